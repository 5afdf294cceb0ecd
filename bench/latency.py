"""End-to-end latency of a 10-minute video: against its critical-path bound, and against
sequential chunk-by-chunk STT, both measured in the same run.

Run: ``python -m bench.latency`` (``make bench-latency``).

It starts its own local stack (``--engines fake``) in a temporary folder, like
``bench.chaos``, and gives the fakes the issue's latency model (``bench.latency_model``:
CLOVA CSR 0.5 s + 0.15 × chunk seconds, CLOVA Speech 1 s + 0.05 × audio seconds, Claude
2 s + 15 ms × output tokens). The stack's fake-mode settings are then adjusted for
realistic latencies, through the stack's own means:

- ``python -m operations.bootstrap`` again with the production client timeouts (CLOVA 60 s,
  Claude 120 s; the stack's fake mode uses a few seconds, less than one 55 s chunk takes)
  and ``CLOVA_CSR_CONCURRENCY`` = room for every chunk of the video (``--concurrency``,
  default two slots per 55 s), which resizes the ``stt-clova-csr`` global limit;
- the fake CSR hears a text with the call's number between its words (``{call}``), so
  that the chunks read differently: one sentence repeated over a long video is what the
  transcript quality gate rejects as an STT loop.

The stack's warm worker takes its runs' settings from its own environment, so the bench
starts the stack with ``STT_CHUNK_CONCURRENCY`` = the same room (capped at 64): every
chunk of the video in flight at once inside the ``transcribe`` task.

Then a short warm-up job (``--no-warmup`` skips it), and the video (a modulated tone made
by ``local_stack.sample_video``; silence would be transcribed as "") is uploaded
``--repeats`` times (3) per mode, each under its own key, one job at a time:

- ``concurrent``: every chunk of the video may hold a slot at once;
- ``sequential-thread-pool`` (the default sequential mode): the warm worker restarted
  with ``STT_CHUNK_CONCURRENCY=1``, so ``transcribe`` sends the chunks one after the
  other with no idle gap (a warm-up job follows the restart: a worker's first run loads
  the flow);
- ``sequential-limit``: ``stt-clova-csr`` set to 1 slot. Chunks then wait for the slot
  with Prefect's 423 ``Retry-After`` back-off (up to 30 s), which idles between chunks:
  slower than chunk-by-chunk STT itself. ``--sequential limit`` or ``both``.

Measured for each job: upload done → the backend receives the DONE callback
(``received_at`` in the reference backend: *end to end*), the flow run's start (Running)
→ that callback (*flow run*), and upload done → the flow run's start (``dispatch_s``: S3
event → SQS → sensor → flow run → the warm worker claiming and starting it). Per stage:
the result document's ``meta.stages`` and the Prefect task runs (``prepare-audio``,
``transcribe``, ``summarize``, ``finish``); per chunk, the fake CSR's time from each
request's arrival to its answer (its ``/__admin/stats`` ``served_s``).

Each job's critical-path bound: ``max(download, audio stage)`` (the result's measured
``download_ms`` and ``ffmpeg_ms``) + the slowest chunk by the model (0.5 + 0.15 × longest
chunk seconds) + the LLM by the model (2 s per call + 15 ms × the output tokens the
result reports) + the callback (the start of the ``finish`` task → the backend receiving
the callback, measured).

The headline figures are medians over the repeats: ``ratio_to_bound`` (each job's end to
end / its bound; ``ratio_to_bound_flow_run`` without the dispatch), ``dispatch_s``, and
``speedup_vs_sequential``, the median end-to-end sequential / the median concurrent (for
the first sequential mode; the flow-run and STT-stage speedups are reported too).
Targets: ``ratio_to_bound ≤ 1.3``, ``speedup_vs_sequential ≥ 5``, ``dispatch_s ≤ 2``.
Results go to ``bench/results/latency.json``. The stack is stopped on every path; its
folder is removed unless ``--keep`` or the run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun

from bench.chaos import Component, kill_leftovers
from bench.latency_model import (
    CHUNK_SECONDS,
    ISSUE_MODEL,
    LatencyModel,
    chunk_durations,
    configure_fakes,
)
from local_stack.sample_video import make_tone_video
from local_stack.stack import (
    REPO_ROOT,
    WARM_WORK_POOL,
    aws_client,
    prefect_client,
    stack_command,
    stack_up,
)
from video_processor.config import SttEngineName, concurrency_limit_name

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "latency.json"
USER_ID = "bench"
DEFAULT_MINUTES = 10.0
WARMUP_SECONDS = 8.0
TARGET_RATIO = 1.3
TARGET_SPEEDUP = 5.0
CSR_LIMIT = concurrency_limit_name("stt", SttEngineName.CLOVA_CSR)
# The production defaults of the client timeouts (the stack's fake mode sets a few seconds).
CLIENT_TIMEOUTS = {"CLOVA_TIMEOUT_SECONDS": "60", "CLAUDE_TIMEOUT_SECONDS": "120"}
# Every word 3-gram holds the call's number: no chunk repeats another (quality gate).
CSR_TEXT = "안녕하세요 {call} 테스트 {call} 음성입니다 {call}"
SEQUENTIAL_MODES = ("thread-pool", "limit")
POLL_S = 0.2
WORKER_STOP_TIMEOUT_S = 60.0
FLOW_RUN_FINAL_TIMEOUT_S = 120.0
BOOTSTRAP_TIMEOUT_S = 300
STAGE_TASKS = ("prepare-audio", "transcribe", "summarize", "finish")
CALLBACK_TASK = "finish"
CHUNK_CONCURRENCY_VARIABLE = "STT_CHUNK_CONCURRENCY"
MAX_CHUNK_CONCURRENCY = 64  # the setting's own bound
TARGET_DISPATCH_S = 2.0
WARM_WORKER_MARKER = ("worker", "start", "--pool", WARM_WORK_POOL)


def log(message: str) -> None:
    print(f"[latency {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- the bound -------------------------------------------------------------------------


def critical_path_bound(
    *,
    download_s: float,
    audio_s: float,
    chunk_seconds: Sequence[float],
    output_tokens: int,
    llm_calls: int,
    callback_s: float,
    model: LatencyModel = ISSUE_MODEL,
) -> dict[str, float]:
    """max(download, audio stage) + slowest STT chunk + LLM + callback, in seconds."""
    parts = {
        "download_s": download_s,
        "audio_s": audio_s,
        "download_or_audio_s": max(download_s, audio_s),
        "slowest_chunk_s": model.csr_s(max(chunk_seconds, default=0.0)),
        "llm_s": model.claude_s(output_tokens, max(1, llm_calls)),
        "callback_s": callback_s,
    }
    parts["total_s"] = (
        parts["download_or_audio_s"]
        + parts["slowest_chunk_s"]
        + parts["llm_s"]
        + parts["callback_s"]
    )
    return {name: round(value, 3) for name, value in parts.items()}


def chunk_spans(result: Mapping[str, Any]) -> list[float]:
    """The chunks' lengths: CLOVA CSR gives one segment per chunk, spanning it."""
    segments = result.get("transcript", {}).get("segments", [])
    spans = [float(s["end_s"]) - float(s["start_s"]) for s in segments]
    if spans:
        return spans
    return chunk_durations(float(result["meta"]["video_duration"]))


# --- one job through the stack ---------------------------------------------------------


@dataclass
class JobRun:
    """What one upload produced: times, the flow run and its task runs, the result."""

    mode: str
    job_id: str
    uploaded_at: float  # epoch seconds, upload complete
    callback_at: float  # epoch seconds, the backend received the DONE callback
    flow_run: FlowRun
    task_runs: list[TaskRun]
    result: dict[str, Any]
    fake_stats: dict[str, Any]


def _epoch(moment: datetime | None) -> float:
    if moment is None:
        raise RuntimeError("a flow or task run has no start or end time")
    return moment.timestamp()


def wait_for_done(env: Mapping[str, str], job_id: str, timeout_s: float) -> dict[str, Any]:
    """The backend's record of the job once final; raises unless it is DONE."""
    url = f"{env['BACKEND_BASE_URL']}/internal/jobs/{job_id}"
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline:
            response = http.get(url)
            if response.status_code == httpx.codes.OK:
                job: dict[str, Any] = response.json()
                if job.get("state") == "DONE":
                    return job
                if job.get("state") == "FAILED":
                    raise RuntimeError(f"job {job_id} FAILED: {job.get('final')}")
            time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id}: no final callback within {timeout_s:.0f} s")


def finished_flow_run(client: SyncPrefectClient, name: str) -> FlowRun:
    """The job's flow run once final (its clean-up runs after the callback)."""
    deadline = time.monotonic() + FLOW_RUN_FINAL_TIMEOUT_S
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
        if runs and all(run.state is not None and run.state.is_final() for run in runs):
            break
        time.sleep(POLL_S)
    else:
        raise RuntimeError(f"{name}: flow runs not final: {[r.state_name for r in runs]}")
    if len(runs) != 1 or runs[0].state_type != StateType.COMPLETED:
        raise RuntimeError(f"{name}: expected one completed run, got {runs}")
    return runs[0]


def run_job(
    env: Mapping[str, str], video: Path, mode: str, timeout_s: float, measured: bool = True
) -> JobRun:
    job_id = f"latency-{mode}-{secrets.token_hex(4)}"
    key = f"videos/{USER_ID}/{job_id}{video.suffix}"
    configure_fakes(env, ISSUE_MODEL)  # also resets their counters
    clova_config = f"{env['FAKE_CLOVA_URL']}/__admin/config"
    httpx.post(clova_config, json={"text": CSR_TEXT}, timeout=10).raise_for_status()
    aws_client(env, "s3").upload_file(str(video), env["VIDEO_BUCKET_NAME"], key)
    uploaded_at = time.time()
    log(f"{mode}: uploaded {key}; waiting for the DONE callback")
    record = wait_for_done(env, job_id, timeout_s)
    accepted = [c for c in record["callbacks"] if c.get("accepted")]
    callback_at = datetime.fromisoformat(accepted[0]["received_at"]).timestamp()
    with prefect_client(env) as client:
        flow_run = finished_flow_run(client, f"job-{job_id}")
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    s3 = aws_client(env, "s3")
    body = s3.get_object(Bucket=env["RESULT_BUCKET_NAME"], Key=f"results/{USER_ID}/{job_id}.json")
    result = json.loads(body["Body"].read())
    with httpx.Client(timeout=10) as http:
        stats = {
            name: http.get(f"{env[variable]}/__admin/stats").json()
            for name, variable in (("clova", "FAKE_CLOVA_URL"), ("claude", "FAKE_ANTHROPIC_URL"))
        }
    if measured:
        log(f"{mode}: DONE {callback_at - uploaded_at:.1f} s after the upload")
    return JobRun(mode, job_id, uploaded_at, callback_at, flow_run, task_runs, result, stats)


def task_seconds(task_runs: Iterable[TaskRun], prefix: str) -> list[float]:
    """Wall seconds (start → end) of the task runs whose name starts with `prefix`."""
    return [
        _epoch(run.end_time) - _epoch(run.start_time)
        for run in sorted(task_runs, key=lambda run: run.name)
        if run.name.startswith(prefix) and run.start_time and run.end_time
    ]


def callback_seconds(task_runs: Iterable[TaskRun], callback_at: float) -> float:
    """From the start of the task that stores the result and sends the callback to the
    backend receiving it (the clean-up after it is not on the path)."""
    starts = [_epoch(run.start_time) for run in task_runs if run.name.startswith(CALLBACK_TASK)]
    if not starts:
        raise RuntimeError(f"no {CALLBACK_TASK!r} task run")
    return max(0.0, callback_at - max(starts))


def measures(run: JobRun, model: LatencyModel = ISSUE_MODEL) -> dict[str, Any]:
    """The figures of one job, in seconds, with its own bound and ratio to it."""
    stages = run.result["meta"]["stages"]
    usage = run.result["summary"].get("usage", {})
    started = _epoch(run.flow_run.start_time)
    tasks = {name: sum(task_seconds(run.task_runs, name)) for name in STAGE_TASKS}
    clova, claude = run.fake_stats["clova"], run.fake_stats["claude"]
    figures: dict[str, Any] = {
        "job_id": run.job_id,
        "end_to_end_s": round(run.callback_at - run.uploaded_at, 3),
        "flow_run_s": round(run.callback_at - started, 3),
        "dispatch_s": round(started - run.uploaded_at, 3),
        "flow_run_created_after_upload_s": round(_epoch(run.flow_run.created) - run.uploaded_at, 3),
        "download_s": stages["download_ms"] / 1000,
        "audio_s": stages["ffmpeg_ms"] / 1000,
        "stt_stage_s": stages["stt_ms"] / 1000,
        "llm_stage_s": stages["llm_ms"] / 1000,
        "callback_s": round(callback_seconds(run.task_runs, run.callback_at), 3),
        "flow_duration_s": run.result["meta"]["duration_ms"] / 1000,
        "task_runs_s": {name: round(value, 3) for name, value in tasks.items()},
        # Per chunk: the fake CSR's time from the request's arrival to its answer.
        "chunk_calls_s": clova.get("served_s", []),
        "chunks": len(clova.get("served_s", [])),
        "chunk_seconds": [round(value, 3) for value in chunk_spans(run.result)],
        "output_tokens": int(usage.get("output_tokens", 0)),
        "llm_calls": int(usage.get("llm_calls", 1)),
        "clova_requests": clova.get("requests"),
        "clova_max_in_flight": clova.get("max_in_flight"),
        "claude_requests": claude.get("requests"),
        "claude_output_tokens": claude.get("output_tokens"),
    }
    bound = job_bound(figures, model)
    figures["bound_s"] = bound
    figures["ratio_to_bound"] = round(figures["end_to_end_s"] / bound["total_s"], 3)
    figures["ratio_to_bound_flow_run"] = round(figures["flow_run_s"] / bound["total_s"], 3)
    return figures


def job_bound(figures: Mapping[str, Any], model: LatencyModel) -> dict[str, float]:
    return critical_path_bound(
        download_s=figures["download_s"],
        audio_s=figures["audio_s"],
        chunk_seconds=figures["chunk_seconds"],
        output_tokens=figures["output_tokens"],
        llm_calls=figures["llm_calls"],
        callback_s=figures["callback_s"],
        model=model,
    )


# --- the stack's settings for the bench ------------------------------------------------


def bootstrap(env: Mapping[str, str], concurrency: int) -> None:
    """Blocks with the production client timeouts; `stt-clova-csr` with `concurrency` slots."""
    subprocess.run(
        [sys.executable, "-m", "operations.bootstrap"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            **env,
            **CLIENT_TIMEOUTS,
            "CLOVA_CSR_CONCURRENCY": str(concurrency),
        },
        capture_output=True,
        text=True,
        timeout=BOOTSTRAP_TIMEOUT_S,
        check=True,
    )


def set_csr_limit(env: Mapping[str, str], slots: int) -> None:
    with prefect_client(env) as client:
        client.upsert_global_concurrency_limit_by_name(CSR_LIMIT, slots)


@dataclass
class WarmWorker:
    """The stack's warm worker, started again with another environment when a mode
    needs it (the runs take their settings from the worker's process)."""

    component: Component
    folder: Path
    overrides: dict[str, str] | None = None

    def use(self, overrides: dict[str, str]) -> None:
        if overrides == (self.overrides or {}):
            return
        self.component.restart_with(self.folder, overrides, WORKER_STOP_TIMEOUT_S)
        self.overrides = overrides
        log(f"warm worker restarted with {overrides}")


def sequential_settings(
    env: Mapping[str, str], worker: WarmWorker, mode: str, concurrency: int
) -> None:
    """Make the next run chunk-by-chunk (`mode`), or concurrent again (mode '')."""
    chunks = 1 if mode == "thread-pool" else min(concurrency, MAX_CHUNK_CONCURRENCY)
    worker.use({CHUNK_CONCURRENCY_VARIABLE: str(chunks)})
    set_csr_limit(env, 1 if mode == "limit" else concurrency)


# --- the report ------------------------------------------------------------------------


def build_report(
    concurrent_runs: Sequence[dict[str, Any]],
    sequential_runs: Mapping[str, Sequence[dict[str, Any]]],
    model: LatencyModel,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The headline figures are medians over the repeats: of each job's ratio to its own
    bound, of the dispatch times, and of the end-to-end times (for the speedup)."""
    concurrent = median_run(concurrent_runs)
    ratio = median(run["ratio_to_bound"] for run in concurrent_runs)
    ratio_flow_run = median(run["ratio_to_bound_flow_run"] for run in concurrent_runs)
    dispatch = median(run["dispatch_s"] for run in concurrent_runs)
    end_to_end = median(run["end_to_end_s"] for run in concurrent_runs)
    # Chunk-by-chunk STT with nothing idle in between: the model's chunk latencies summed.
    ideal_stt = sum(model.csr_s(span) for span in concurrent["chunk_seconds"])
    ideal_sequential = concurrent["end_to_end_s"] - concurrent["stt_stage_s"] + ideal_stt
    report: dict[str, Any] = {
        "ratio_to_bound": round(ratio, 3),
        "ratio_to_bound_flow_run": round(ratio_flow_run, 3),
        "dispatch_s": round(dispatch, 3),
        "end_to_end_s": round(end_to_end, 3),
        "flow_run_s": round(median(run["flow_run_s"] for run in concurrent_runs), 3),
        "bound_s": concurrent["bound_s"],
        "medians_of": len(concurrent_runs),
    }
    sequential = {mode: median_run(runs) for mode, runs in sequential_runs.items()}
    if sequential_runs:
        mode, first = next(iter(sequential_runs.items()))

        def speedup(key: str) -> float:
            return round(
                median(run[key] for run in first) / median(run[key] for run in concurrent_runs), 2
            )

        report.update(
            speedup_vs_sequential=speedup("end_to_end_s"),
            speedup_vs_sequential_flow_run=speedup("flow_run_s"),
            speedup_vs_sequential_stt_stage=speedup("stt_stage_s"),
            sequential_mode=mode,
        )
    report.update(
        speedup_vs_ideal_sequential=round(ideal_sequential / concurrent["end_to_end_s"], 2),
        ideal_sequential_end_to_end_s=round(ideal_sequential, 3),
        ideal_sequential_note=(
            "the median concurrent job with its STT stage replaced by the model's chunk "
            "latencies summed: chunk-by-chunk STT with no idle gap"
        ),
        targets={
            "ratio_to_bound_max": TARGET_RATIO,
            "speedup_min": TARGET_SPEEDUP,
            "dispatch_s_max": TARGET_DISPATCH_S,
            "ratio_met": ratio <= TARGET_RATIO,
            "ratio_flow_run_met": ratio_flow_run <= TARGET_RATIO,
            "speedup_met": report.get("speedup_vs_sequential", 0.0) >= TARGET_SPEEDUP,
            "dispatch_met": dispatch <= TARGET_DISPATCH_S,
        },
        runs={"concurrent": concurrent, **{f"sequential-{m}": r for m, r in sequential.items()}},
        latency_model=model.to_json(),
        settings=settings,
    )
    return report


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def print_summary(report: dict[str, Any]) -> None:
    runs: dict[str, dict[str, Any]] = report["runs"]
    rows = (
        ("upload -> DONE callback (s)", "end_to_end_s"),
        ("  every job (s)", "end_to_end_all_s"),
        ("flow run start -> callback (s)", "flow_run_s"),
        ("upload -> flow run start (s)", "dispatch_s"),
        ("  every job (s)", "dispatch_all_s"),
        ("ratio to its bound", "ratio_to_bound"),
        ("download (s)", "download_s"),
        ("audio stage, FFmpeg (s)", "audio_s"),
        ("STT stage (s)", "stt_stage_s"),
        ("LLM stage (s)", "llm_stage_s"),
        ("chunks", "chunks"),
        ("CSR requests in flight, max", "clova_max_in_flight"),
    )
    names = list(runs)
    print(f"  {'':<32}" + "".join(f"{name:>24}" for name in names))
    for label, key in rows:
        print(f"  {label:<32}" + "".join(f"{runs[name][key]!s:>24}" for name in names))
    bound = report["bound_s"]
    print(
        f"  bound {bound['total_s']:.2f} s = max(download {bound['download_s']:.2f}, audio "
        f"{bound['audio_s']:.2f}) + slowest chunk {bound['slowest_chunk_s']:.2f} + LLM "
        f"{bound['llm_s']:.2f} + callback {bound['callback_s']:.2f}"
    )
    targets = report["targets"]
    print(f"  medians of {report['medians_of']} jobs:")
    print(
        f"  ratio_to_bound {report['ratio_to_bound']} (end to end; flow run "
        f"{report['ratio_to_bound_flow_run']}); target <= {targets['ratio_to_bound_max']}"
    )
    print(f"  dispatch_s {report['dispatch_s']}; target <= {targets['dispatch_s_max']}")
    if "speedup_vs_sequential" in report:
        print(
            f"  speedup_vs_sequential {report['speedup_vs_sequential']} "
            f"({report['sequential_mode']}; flow run {report['speedup_vs_sequential_flow_run']}, "
            f"STT stage {report['speedup_vs_sequential_stt_stage']}); "
            f"target >= {targets['speedup_min']}"
        )
    print(f"  speedup_vs_ideal_sequential {report['speedup_vs_ideal_sequential']}")


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median end-to-end latency (the lower middle one for an even count),
    with every run's end-to-end and flow-run latencies beside it."""
    ordered = sorted(runs, key=lambda run: float(run["end_to_end_s"]))
    return {
        **ordered[(len(ordered) - 1) // 2],
        "end_to_end_all_s": [run["end_to_end_s"] for run in runs],
        "flow_run_all_s": [run["flow_run_s"] for run in runs],
        "dispatch_all_s": [run["dispatch_s"] for run in runs],
        "ratio_to_bound_all": [run.get("ratio_to_bound") for run in runs],
    }


def parse_modes(text: str) -> list[str]:
    if text == "none":
        return []
    modes = list(SEQUENTIAL_MODES) if text == "both" else [text]
    if any(mode not in SEQUENTIAL_MODES for mode in modes):
        raise argparse.ArgumentTypeError(f"one of {', '.join(SEQUENTIAL_MODES)}, both, none")
    return modes


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="video length")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="stt-clova-csr slots in the concurrent run (default: 2 per 55 s of video)",
    )
    parser.add_argument(
        "--sequential",
        type=parse_modes,
        default=["thread-pool"],
        help="thread-pool (default), limit, both (the first is the headline) or none",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="jobs per mode; the median is reported (3)"
    )
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--keep", action="store_true", help="keep the stack folder (logs)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    seconds = args.minutes * 60.0
    expected_chunks = chunk_durations(seconds)
    # Twice the fixed-length chunks: cuts at pauses may make a few more, shorter ones.
    concurrency = args.concurrency or 2 * max(1, len(expected_chunks))
    model = ISSUE_MODEL
    sequential_model_s = sum(model.csr_s(span) for span in expected_chunks)
    timeout_s = 240.0 + 3 * sequential_model_s

    folder = Path(tempfile.mkdtemp(prefix="latency-stack-"))
    load_at_start = os.getloadavg()
    log(f"starting the local stack in {folder}; load average {load_at_start}")
    began = time.monotonic()
    env: dict[str, str] | None = None
    report: dict[str, Any] | None = None
    worker: WarmWorker | None = None
    chunk_threads = str(min(concurrency, MAX_CHUNK_CONCURRENCY))
    os.environ[CHUNK_CONCURRENCY_VARIABLE] = chunk_threads  # the stack's warm worker's
    try:
        env = stack_up(folder)
        stack_up_s = time.monotonic() - began
        log(f"stack up in {stack_up_s:.0f} s; setting it up for the latency model")
        bootstrap(env, concurrency)
        component = Component("warm-worker", WARM_WORKER_MARKER, env["PREFECT_API_URL"])
        worker = WarmWorker(component, folder, {CHUNK_CONCURRENCY_VARIABLE: chunk_threads})
        video = make_tone_video(folder / "video.mp4", seconds)
        warmup = make_tone_video(folder / "warmup.mp4", WARMUP_SECONDS)

        def warm_up() -> None:
            if args.warmup:
                run_job(env, warmup, "warmup", timeout_s, measured=False)
                log("warm-up job done")

        def repeat(mode: str) -> list[dict[str, Any]]:
            return [
                measures(run_job(env, video, mode, timeout_s), model) for _ in range(args.repeats)
            ]

        warm_up()
        concurrent = repeat("concurrent")
        chunks = max(run["chunks"] for run in concurrent)
        if chunks > concurrency:
            log(f"warning: {chunks} chunks, only {concurrency} slots")
        sequential: dict[str, list[dict[str, Any]]] = {}
        for mode in args.sequential:
            sequential_settings(env, worker, mode, concurrency)
            warm_up()  # a restarted worker's first run loads the flow
            sequential[mode] = repeat(f"sequential-{mode}")
        settings = {
            "video_minutes": args.minutes,
            "video_seconds": seconds,
            "chunk_seconds": CHUNK_SECONDS,
            "expected_chunks": len(expected_chunks),
            "concurrency": concurrency,
            "chunk_concurrency": int(chunk_threads),
            "sequential_modes": args.sequential,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "client_timeouts": CLIENT_TIMEOUTS,
            "csr_text": CSR_TEXT,
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
            "stack_start_s": round(stack_up_s, 1),
        }
        report = build_report(concurrent, sequential, model, settings)
        report["settings"]["total_s"] = round(time.monotonic() - began, 1)
    finally:
        stack_command("down", folder)
        if env is not None:
            left = kill_leftovers(env["PREFECT_API_URL"])
            if left:
                log(f"killed {len(left)} leftover processes of the stack: {left}")
        keep = args.keep or report is None
        if keep:
            log(f"stack folder kept: {folder} (logs in {folder / 'logs'})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"latency of a {args.minutes:g}-minute video (written to {args.output}):")
    print_summary(report)
    targets = report["targets"]
    met = targets["ratio_met"] and targets["speedup_met"] and targets["dispatch_met"]
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

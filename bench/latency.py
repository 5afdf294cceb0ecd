"""End-to-end latency of a 10-minute video: against its critical-path bound, and against
sequential chunk-by-chunk STT, both measured in the same run.

Run: ``python -m bench.latency`` (``make bench-latency``).

It starts its own local stack (``--engines fake``) in a temporary folder, like
``bench.chaos``, and gives the fakes the issue's latency model (``bench.latency_model``:
CLOVA CSR 0.5 s + 0.15 × chunk seconds, CLOVA Speech 1 s + 0.05 × audio seconds, Claude
2 s + 15 ms × output tokens). The stack's fake-mode settings are then adjusted for
realistic latencies, through the stack's own means:

- ``python -m blocks.bootstrap`` again with the production client timeouts (CLOVA 60 s,
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
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun, StateType

from bench import harness
from bench.harness import PRODUCTION_TIMEOUTS, WARM_WORKER_MARKER, Component, StackSession
from bench.latency_figures import JobRun, build_report, measures, print_summary
from bench.latency_model import (
    CHUNK_SECONDS,
    ISSUE_MODEL,
    chunk_durations,
    configure_fakes,
)
from local_stack.sample_video import make_tone_video
from local_stack.stack import aws_client, prefect_client
from video_processor.config import SttEngineName, concurrency_limit_name

USER_ID = "bench"
DEFAULT_MINUTES = 10.0
WARMUP_SECONDS = 8.0
CSR_LIMIT = concurrency_limit_name("stt", SttEngineName.CLOVA_CSR)
# Every word 3-gram holds the call's number, so no chunk repeats another, and no word
# is repeated within a chunk, so none dominates it (the quality gate's loop checks).
CSR_TEXT = "안녕하세요 {call}번 테스트 {call}번째 음성입니다 {call}호"
SEQUENTIAL_MODES = ("thread-pool", "limit")
POLL_S = 0.2
WORKER_STOP_TIMEOUT_S = 60.0
FLOW_RUN_FINAL_TIMEOUT_S = 120.0
CHUNK_CONCURRENCY_VARIABLE = "STT_CHUNK_CONCURRENCY"
MAX_CHUNK_CONCURRENCY = 64  # the setting's own bound
log = harness.logger("latency")


# --- the bound -------------------------------------------------------------------------


# --- one job through the stack ---------------------------------------------------------


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
    stats = harness.fake_stats(env)
    if measured:
        log(f"{mode}: DONE {callback_at - uploaded_at:.1f} s after the upload")
    return JobRun(mode, job_id, uploaded_at, callback_at, flow_run, task_runs, result, stats)


# --- the stack's settings for the bench ------------------------------------------------


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


def parse_modes(text: str) -> list[str]:
    if text == "none":
        return []
    modes = list(SEQUENTIAL_MODES) if text == "both" else [text]
    if any(mode not in SEQUENTIAL_MODES for mode in modes):
        raise argparse.ArgumentTypeError(f"one of {', '.join(SEQUENTIAL_MODES)}, both, none")
    return modes


def main(argv: Iterable[str] | None = None) -> int:
    parser = harness.bench_parser("latency", __doc__)
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
    chunk_threads = str(min(concurrency, MAX_CHUNK_CONCURRENCY))
    os.environ[CHUNK_CONCURRENCY_VARIABLE] = chunk_threads  # the stack's warm worker's
    with StackSession("latency", keep=args.keep) as stack:
        env = stack.env
        log(f"stack up in {stack.stack_start_s:.0f} s; setting it up for the latency model")
        # Blocks with the production client timeouts; `stt-clova-csr` with `concurrency` slots.
        harness.bootstrap(stack, {**PRODUCTION_TIMEOUTS, "CLOVA_CSR_CONCURRENCY": str(concurrency)})
        component = stack.component("warm-worker", WARM_WORKER_MARKER)
        worker = WarmWorker(component, stack.folder, {CHUNK_CONCURRENCY_VARIABLE: chunk_threads})
        video = make_tone_video(stack.folder / "video.mp4", seconds)
        warmup = make_tone_video(stack.folder / "warmup.mp4", WARMUP_SECONDS)

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
            "client_timeouts": PRODUCTION_TIMEOUTS,
            "csr_text": CSR_TEXT,
            **harness.machine(stack.load_at_start),
            "stack_start_s": round(stack.stack_start_s, 1),
        }
        report = build_report(concurrent, sequential, model, settings)
        report["settings"]["total_s"] = stack.elapsed()
        stack.succeeded(True)
    harness.write_report(report, args.output, f"latency of a {args.minutes:g}-minute video")
    print_summary(report)
    targets = report["targets"]
    met = targets["ratio_met"] and targets["speedup_met"] and targets["dispatch_met"]
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

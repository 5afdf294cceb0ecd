"""The latency bench's figures: a job's critical-path bound, its measures from its flow
run, task runs and result, and the report over the repeats (pure: see bench.latency)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun, TaskRun

from bench.latency_model import ISSUE_MODEL, LatencyModel, chunk_durations

TARGET_RATIO = 1.3
TARGET_SPEEDUP = 5.0
STAGE_TASKS = ("prepare-audio", "transcribe", "summarize", "finish")
CALLBACK_TASK = "finish"
TARGET_DISPATCH_S = 2.0


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
    clova, claude = run.fake_stats["clova"], run.fake_stats["anthropic"]
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

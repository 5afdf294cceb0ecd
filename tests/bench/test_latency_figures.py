"""The latency bench's figures: the bound, a job's callback time, the report (no stack)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bench.latency_figures import (
    build_report,
    callback_seconds,
    chunk_spans,
    critical_path_bound,
    job_bound,
    median_run,
)
from bench.latency_model import ISSUE_MODEL


def test_bound_is_the_critical_path():
    bound = critical_path_bound(
        download_s=0.4,
        audio_s=3.0,
        chunk_seconds=[55.0, 55.0, 12.0],
        output_tokens=300,
        llm_calls=1,
        callback_s=0.2,
    )
    assert bound["download_or_audio_s"] == pytest.approx(3.0)
    assert bound["slowest_chunk_s"] == pytest.approx(8.75)
    assert bound["llm_s"] == pytest.approx(6.5)
    assert bound["total_s"] == pytest.approx(3.0 + 8.75 + 6.5 + 0.2)


def test_chunk_spans_come_from_the_segments_or_the_duration():
    result = {
        "transcript": {"segments": [{"start_s": 0, "end_s": 55}, {"start_s": 55, "end_s": 70}]},
        "meta": {"video_duration": 70},
    }
    assert chunk_spans(result) == [55, 15]
    assert chunk_spans({"transcript": {"segments": []}, "meta": {"video_duration": 70}}) == [
        55.0,
        15.0,
    ]


def _measures(end_to_end: float, flow_run: float, stt: float) -> dict[str, object]:
    figures: dict[str, object] = {
        "end_to_end_s": end_to_end,
        "flow_run_s": flow_run,
        "dispatch_s": end_to_end - flow_run,
        "download_s": 0.2,
        "audio_s": 2.0,
        "stt_stage_s": stt,
        "chunk_seconds": [55.0, 55.0, 10.0],
        "output_tokens": 200,
        "llm_calls": 1,
        "callback_s": 0.3,
    }
    bound = job_bound(figures, ISSUE_MODEL)
    figures["bound_s"] = bound
    figures["ratio_to_bound"] = round(end_to_end / bound["total_s"], 3)
    figures["ratio_to_bound_flow_run"] = round(flow_run / bound["total_s"], 3)
    return figures


def test_report_has_the_headline_keys_as_medians_of_the_repeats():
    concurrent = [
        _measures(30.0, 22.0, 9.5),
        _measures(28.0, 26.5, 9.0),
        _measures(60.0, 58.5, 9.4),
    ]
    sequential = {"thread-pool": [_measures(50.0, 42.0, 28.0), _measures(70.0, 62.0, 29.0)]}
    report = build_report(concurrent, sequential, ISSUE_MODEL, {"video_minutes": 2})
    bound = 2.0 + 8.75 + 5.0 + 0.3
    assert report["bound_s"]["total_s"] == pytest.approx(bound)
    assert report["medians_of"] == 3
    # The median of each figure, not the figures of one job: 30 s end to end, 1.5 s dispatch.
    assert report["ratio_to_bound"] == pytest.approx(30.0 / bound, abs=1e-3)
    assert report["ratio_to_bound_flow_run"] == pytest.approx(26.5 / bound, abs=1e-3)
    assert report["dispatch_s"] == pytest.approx(1.5)
    assert report["targets"]["dispatch_met"] is True
    assert report["speedup_vs_sequential"] == pytest.approx(60 / 30, abs=0.01)
    assert report["speedup_vs_sequential_stt_stage"] == pytest.approx(28.5 / 9.4, abs=0.01)
    assert report["sequential_mode"] == "thread-pool"
    assert set(report["runs"]) == {"concurrent", "sequential-thread-pool"}
    assert report["targets"]["ratio_met"] is False
    ideal = 30.0 - 9.5 + 2 * 8.75 + 2.0
    assert report["ideal_sequential_end_to_end_s"] == pytest.approx(ideal)


def test_the_callback_runs_from_the_finish_task_to_the_backend():
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def task_run(name: str, seconds: float) -> SimpleNamespace:
        return SimpleNamespace(name=name, start_time=start + timedelta(seconds=seconds))

    runs: list[Any] = [task_run("summarize-a1", 10.0), task_run("finish-b2", 20.0)]
    assert callback_seconds(runs, start.timestamp() + 20.4) == pytest.approx(0.4)
    with pytest.raises(RuntimeError):
        callback_seconds(runs[:1], start.timestamp())


def test_the_median_job_is_reported_with_every_job():
    runs = [
        {"end_to_end_s": value, "flow_run_s": value - 8, "dispatch_s": 8.0}
        for value in (31.0, 29.0, 40.0)
    ]
    median = median_run(runs)
    assert median["end_to_end_s"] == 31.0
    assert median["end_to_end_all_s"] == [31.0, 29.0, 40.0]
    assert median["flow_run_all_s"] == [23.0, 21.0, 32.0]

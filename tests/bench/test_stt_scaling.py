"""The STT scaling bench: the model-timed fake, and a tiny run of two short lengths."""

from __future__ import annotations

import importlib.util
import json

from bench.latency_model import ISSUE_MODEL
from bench.stt_scaling import main, model_latencies


def test_model_latencies():
    sequential, concurrent = model_latencies([55.0] * 9, ISSUE_MODEL, concurrency=8)
    assert sequential == 9 * 8.75
    assert concurrent == 2 * 8.75


def test_tiny_run_writes_json_and_plot(tmp_path, capsys):
    plot = importlib.util.find_spec("matplotlib") is not None  # requirements-bench.txt
    code = main(
        [
            *("--lengths", "0.5,1", "--time-scale", "0.02", "--concurrency", "2"),
            *("--output-dir", str(tmp_path)),
            *([] if plot else ["--no-plot"]),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "stt_latency.json").read_text())
    assert [point["chunks"] for point in report["points"]] == [1, 2]
    assert report["time_scale"] == 0.02
    for point in report["points"]:
        assert point["sequential_s"] > 0 and point["concurrent_s"] > 0
    assert report["points"][1]["model_sequential_s"] == 8.75 + 1.25
    assert (tmp_path / "stt_latency.png").exists() == plot
    assert "speedup" in capsys.readouterr().out

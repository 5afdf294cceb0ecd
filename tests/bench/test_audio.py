"""Smoke test of the audio bench: a short file, one repetition, the report's keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.audio import main


def test_bench_writes_the_ratio_and_the_chunk_figures(tmp_path: Path):
    output = tmp_path / "audio.json"
    arguments = ["--seconds", "70", "--repeats", "1", "--profiles", "denoise", "none"]
    assert main([*arguments, "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["profile"] == "denoise"  # the default profile is the headline
    assert isinstance(report["ratio_to_filter_only"], float)
    assert report["file"]["duration_s"] == pytest.approx(70, abs=0.1)
    assert set(report["profiles"]) == {"denoise", "none"}
    for figures in report["profiles"].values():
        assert {"filter_only_s", "audio_stage_s", "ratio_to_filter_only", "ratio_cpu"} <= set(
            figures
        )
        chunks = figures["chunks"]
        assert chunks["count"] == 2
        assert chunks["total_s"] == pytest.approx(70, abs=0.1)
        assert chunks["duration_max_s"] <= 55
        assert chunks["fraction_cuts_at_silence"] == 1.0  # espeak-ng's sentence pauses

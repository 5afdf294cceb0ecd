"""The soak bench's pure parts: temp files and the verdict (no stack)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.soak import build_report, temp_left, verdict


def test_only_the_stages_work_folders_count_as_temp_files_left(tmp_path: Path):
    (tmp_path / "avp-abc123").mkdir()
    (tmp_path / "avp-file").write_text("x")
    (tmp_path / "other-avp-x").mkdir()
    assert temp_left(tmp_path) == ["avp-abc123", "avp-file"]


def test_growth_is_measured_from_about_100_runs_to_the_last():
    steady = {0: 300.0, 100: 340.0, 200: 342.0, 500: 350.0}
    assert verdict(steady, []) == {
        "reference_runs": 100,
        "growth_mib": 10.0,
        "growth_ratio": 0.029,
        "no_growth": True,
        "no_temp_files_left": True,
    }
    leaking = {0: 300.0, 100: 340.0, 500: 420.0}
    assert verdict(leaking, ["avp-x"])["no_growth"] is False
    assert verdict(leaking, ["avp-x"])["no_temp_files_left"] is False


def test_the_report_names_start_100_and_the_end():
    report = build_report({0: 300.0, 100: 340.0, 500: 345.0}, [], [], {"runs": 500})
    assert report["rss_mib"] == {"start": 300.0, "after_100": 340.0, "after_500": 345.0}
    assert report["runs"] == 500 and report["target_met"]
    assert build_report({0: 300.0, 100: 340.0}, [], ["soak-00003"], {})["target_met"] is False
    json.dumps(report)

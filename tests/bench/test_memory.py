"""The memory bench: sized videos, and one tiny run against the test moto server."""

from __future__ import annotations

import json

import pytest

from bench.memory import MB, frame_size, main, make_sized_video


def test_frame_size_reaches_the_wanted_bytes():
    width, height = frame_size(2_000 * MB, seconds=120)
    assert width % 2 == 0 and height % 2 == 0
    frame_bytes = width * height * 1.5 * 25 * 120
    assert frame_bytes == pytest.approx(2_000 * MB, rel=0.02)
    assert frame_size(1, seconds=10) == (16, 16)


def test_sized_video_is_about_the_size(tmp_path):
    video = make_sized_video(tmp_path / "v.mkv", 3 * MB, seconds=4)
    assert video.stat().st_size == pytest.approx(3 * MB, rel=0.1)


def test_tiny_run_writes_the_report(tmp_path, moto_env, capsys):
    output = tmp_path / "memory.json"
    code = main(
        [
            *("--small-mb", "1", "--large-mb", "4", "--seconds", "6", "--bare"),
            *("--endpoint", moto_env["AWS_ENDPOINT_URL"], "--output", str(output)),
            *("--work-dir", str(tmp_path)),
        ]
    )
    report = json.loads(output.read_text())
    assert code in (0, 1)  # no timed or memory assertion: the figures are the lead's
    for key in ("rss_small_mb", "rss_large_mb", "ffmpeg_rss_small_mb", "target_met"):
        assert key in report
    assert report["small"]["chunks"] == report["large"]["chunks"] == 1
    assert report["large"]["video_mb"] > report["small"]["video_mb"]
    assert report["rss_small_mb"] > 0 and report["ffmpeg_rss_small_mb"] > 0
    assert list(tmp_path.iterdir()) == [output]  # the videos are gone
    assert "worker peak RSS" in capsys.readouterr().out

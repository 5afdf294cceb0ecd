"""Sample media made with the real espeak-ng and ffmpeg, checked with ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.sample_video import (
    make_corrupt_video,
    make_korean_speech_video,
    make_silent_video,
    make_tone_video,
    make_video_without_audio,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("ffprobe") is None,
    reason="needs the espeak-ng and ffmpeg binaries",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DURATION_TOLERANCE_S = 0.2
SILENCE_MAX_DB = -90.0


def _probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    probe: dict[str, Any] = json.loads(result.stdout)
    return probe


def _codecs(probe: dict[str, Any]) -> dict[str, str]:
    return {stream["codec_type"]: stream["codec_name"] for stream in probe["streams"]}


def _max_volume_db(path: Path) -> float:
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-af", "volumedetect",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(line for line in result.stderr.splitlines() if "max_volume:" in line)
    return float(line.split("max_volume:")[1].split()[0])


def test_korean_speech_video_has_h264_and_aac_of_a_short_talk(tmp_path: Path):
    probe = _probe(make_korean_speech_video(tmp_path / "talk.mp4"))
    assert _codecs(probe) == {"video": "h264", "audio": "aac"}
    assert 8.0 <= float(probe["format"]["duration"]) <= 18.0
    audio = next(stream for stream in probe["streams"] if stream["codec_type"] == "audio")
    video = next(stream for stream in probe["streams"] if stream["codec_type"] == "video")
    assert abs(float(video["duration"]) - float(audio["duration"])) < 0.5
    assert (video["width"], video["height"]) == (320, 240)


def test_korean_speech_video_speaks_the_given_text(tmp_path: Path):
    short = _probe(make_korean_speech_video(tmp_path / "short.mp4", "안녕하세요."))
    assert float(short["format"]["duration"]) < 4.5  # 2 s of padding, 120 words per minute
    assert _max_volume_db(tmp_path / "short.mp4") > SILENCE_MAX_DB


@pytest.mark.parametrize("seconds", [1.5, 4.0])
def test_tone_video_has_audio_of_the_requested_length(tmp_path: Path, seconds: float):
    path = make_tone_video(tmp_path / "tone.mp4", seconds)
    probe = _probe(path)
    assert _codecs(probe) == {"video": "h264", "audio": "aac"}
    assert float(probe["format"]["duration"]) == pytest.approx(seconds, abs=DURATION_TOLERANCE_S)
    assert _max_volume_db(path) > -20.0


def test_video_without_audio_has_only_a_video_stream(tmp_path: Path):
    probe = _probe(make_video_without_audio(tmp_path / "mute.mp4", 2.0))
    assert _codecs(probe) == {"video": "h264"}
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=DURATION_TOLERANCE_S)


def test_silent_video_has_an_audio_stream_of_silence(tmp_path: Path):
    path = make_silent_video(tmp_path / "silent.mp4", 2.0)
    probe = _probe(path)
    assert _codecs(probe) == {"video": "h264", "audio": "aac"}
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=DURATION_TOLERANCE_S)
    assert _max_volume_db(path) <= SILENCE_MAX_DB


def test_corrupt_video_is_refused_by_ffprobe_and_is_reproducible(tmp_path: Path):
    first = make_corrupt_video(tmp_path / "a.mp4")
    second = make_corrupt_video(tmp_path / "b.mp4")
    assert first.read_bytes() == second.read_bytes()
    result = subprocess.run(["ffprobe", "-v", "error", str(first)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Invalid data" in result.stderr


def test_ffmpeg_failure_is_a_runtime_error_with_its_stderr(tmp_path: Path):
    with pytest.raises(RuntimeError, match=r"ffmpeg exited with .*format"):
        make_tone_video(tmp_path / "tone.not-a-container", 1.0)


def test_durations_must_be_positive(tmp_path: Path):
    with pytest.raises(ValueError, match="positive"):
        make_silent_video(tmp_path / "x.mp4", 0)


def test_command_line_writes_the_requested_kind(tmp_path: Path):
    out = tmp_path / "cli" / "mute.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "local_stack.sample_video", str(out), "--kind", "no-audio",
         "--seconds", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == str(out)
    assert _codecs(_probe(out)) == {"video": "h264"}

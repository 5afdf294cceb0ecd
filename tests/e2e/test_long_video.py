"""End to end: a 30-minute video is transcribed over its whole length.

The video is generated (a flat 1 fps picture and a tremolo tone that is never silent), so
the fake CLOVA CSR recognises every chunk. It answers each call with a numbered sentence:
one text repeated over 30+ chunks is what the quality gate rightly rejects as an STT loop.
The chunker may cut at silences or at fixed points; the test relies only on what CSR
imposes: no chunk longer than 60 s.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.sample_video import make_long_tone_video
from tests.e2e.stack_client import StackClient, new_job_id
from video_processor.models import TranscriptSegment
from video_processor.subtitles import build_cues

pytestmark = pytest.mark.e2e

VIDEO_SECONDS = 1800.0
CSR_MAX_CHUNK_SECONDS = 60.0
EDGE_TOLERANCE_S = 1.0
MIN_COVERAGE = 0.95
LONG_JOB_TIMEOUT_S = 600.0
# Every 3-word sequence holds a call number: no two chunks' sentences repeat each other.
NUMBERED_TEXT = "{call}번째 구간에서는 {call}번 주제를 설명합니다"
SPOKEN = re.compile(r"^(\d+)번째 구간에서는 \1번 주제를 설명합니다$")
CUE_TIMING = re.compile(
    r"^(\d{2,}):(\d{2}):(\d{2})[,.](\d{3}) --> (\d{2,}):(\d{2}):(\d{2})[,.](\d{3})$"
)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long-video")
    return make_long_tone_video(folder / "half-hour.mp4", seconds=VIDEO_SECONDS)


@pytest.fixture
def numbered_stt(stack: StackClient) -> Iterator[None]:
    stack.configure("clova", text=NUMBERED_TEXT)
    try:
        yield
    finally:
        stack.reset("clova")


def _ms(hours: str, minutes: str, seconds: str, millis: str) -> int:
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def parse_cues(text: str) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of every cue of an SRT or WebVTT document."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        timing = next((i for i, line in enumerate(lines) if CUE_TIMING.match(line)), None)
        if timing is None:
            continue  # the WEBVTT header
        match = CUE_TIMING.match(lines[timing])
        assert match is not None
        groups = match.groups()
        cues.append((_ms(*groups[:4]), _ms(*groups[4:]), " ".join(lines[timing + 1 :])))
    return cues


@pytest.mark.usefixtures("numbered_stt")
def test_half_hour_video_is_transcribed_end_to_end_with_subtitles(
    stack: StackClient, long_video: Path
) -> None:
    job_id = new_job_id()
    stack.upload(long_video, f"videos/user-long/{job_id}.mp4")

    final = stack.wait_for_callbacks(job_id, timeout_s=LONG_JOB_TIMEOUT_S)["final"]

    assert final["status"] == "DONE", final
    assert final["meta"]["video_duration"] == pytest.approx(VIDEO_SECONDS, abs=EDGE_TOLERANCE_S)
    result = stack.result(final["result_s3_key"])
    assert result["meta"]["video_duration"] == pytest.approx(VIDEO_SECONDS, abs=EDGE_TOLERANCE_S)

    # Segments: timed, in order, not overlapping, together spanning the whole video.
    segments = [TranscriptSegment(**segment) for segment in result["transcript"]["segments"]]
    assert len(segments) >= math.ceil(VIDEO_SECONDS / CSR_MAX_CHUNK_SECONDS)
    assert [segment.id for segment in segments] == list(range(len(segments)))
    calls = []
    for segment in segments:
        spoken = SPOKEN.match(segment.text)
        assert spoken is not None, segment
        calls.append(int(spoken[1]))
    for segment in segments:
        assert 0 < segment.end_s - segment.start_s <= CSR_MAX_CHUNK_SECONDS, segment
    for before, after in itertools.pairwise(segments):
        assert before.end_s <= after.start_s + 0.01, (before, after)  # ordered, no overlap
        assert after.start_s - before.end_s < CSR_MAX_CHUNK_SECONDS, (before, after)
    assert segments[0].start_s <= EDGE_TOLERANCE_S
    assert segments[-1].end_s == pytest.approx(VIDEO_SECONDS, abs=EDGE_TOLERANCE_S)
    covered = sum(segment.end_s - segment.start_s for segment in segments)
    assert covered >= MIN_COVERAGE * VIDEO_SECONDS
    assert result["transcript_text"] == final["transcript"] != ""

    # The summary of a long transcript still cites segments that exist.
    ids = {segment.id for segment in segments}
    assert result["summary"]["key_points"]
    for point in result["summary"]["key_points"]:
        assert set(point["segment_ids"]) <= ids

    # Every chunk was recognised by its own CLOVA call. On a loaded machine a call can
    # outlast the stack's 5 s client timeout and be retried; the fake still answers (and
    # counts) the abandoned one, so calls and audio seconds are at least, not exactly, these.
    clova = stack.stats("clova")
    assert len(set(calls)) == len(calls)
    assert len(segments) <= clova["recognized"] == clova["requests"]
    assert max(calls) <= clova["recognized"]
    assert clova["by_status"] == {"200": clova["requests"]}
    assert clova["audio_seconds"] >= VIDEO_SECONDS - EDGE_TOLERANCE_S

    # Subtitles at the keys the callback names. A segment longer than a readable cue
    # (7 s) is shared between several cues, so cues are counted against build_cues.
    srt = parse_cues(stack.result_text(final["meta"]["srt_s3_key"]))
    vtt_text = stack.result_text(final["meta"]["vtt_s3_key"])
    assert vtt_text.startswith("WEBVTT")
    vtt = parse_cues(vtt_text)
    expected = build_cues(segments)
    assert len(srt) == len(expected) >= len(segments)
    assert [(start, end) for start, end, _ in srt] == [(c.start_ms, c.end_ms) for c in expected]
    assert [(start, end) for start, end, _ in vtt] == [(start, end) for start, end, _ in srt]
    for cue, next_cue in itertools.pairwise(srt):
        assert cue[0] < cue[1] <= next_cue[0]
    assert srt[0][0] == round(segments[0].start_s * 1000)
    assert srt[-1][1] == round(segments[-1].end_s * 1000)
    assert srt[-1][1] / 1000 == pytest.approx(VIDEO_SECONDS, abs=EDGE_TOLERANCE_S)
    cue_starts = {start for start, _, _ in srt}
    cue_ends = {end for _, end, _ in srt}
    for segment in segments:  # each segment's span is covered by its own cues
        assert round(segment.start_s * 1000) in cue_starts
        assert round(segment.end_s * 1000) in cue_ends

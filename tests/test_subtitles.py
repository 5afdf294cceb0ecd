"""SRT and WebVTT writers: the output is parsed back (by hand and by ffprobe)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from video_processor.models import Transcript, TranscriptSegment
from video_processor.subtitles import (
    MAX_CUE_SECONDS,
    MAX_LINE_CHARS,
    MAX_LINES,
    build_cues,
    format_timestamp,
    to_srt,
    to_webvtt,
)

SRT_TIME = r"(\d{2,}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})"
LONG_KOREAN = (
    "오늘 회의에서는 짧은 영상 서비스의 출시 일정을 논의하겠습니다 개발팀은 다음 주까지 "
    "자동 요약 기능을 완성할 예정이며 마케팅팀은 사용자 의견을 모아 다음 회의 전에 공유해 "
    "주시기 바랍니다 그리고 디자인팀은 새 화면 시안을 준비해 주세요"
)


@dataclass
class ParsedCue:
    number: int
    start_s: float
    end_s: float
    lines: list[str]


def _seconds(match: tuple[str, ...]) -> float:
    hours, minutes, seconds, millis = (int(part) for part in match)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse(text: str, time_pattern: str) -> list[ParsedCue]:
    """A strict reader: blocks separated by one blank line, number, timing, 1+ text lines."""
    timing = re.compile(rf"^{time_pattern} --> {time_pattern}$")
    cues = []
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    for block in text.strip("\n").split("\n\n"):
        number, times, *lines = block.split("\n")
        match = timing.match(times)
        assert match, times
        groups = match.groups()
        assert lines and all(line.strip() for line in lines), block
        cues.append(ParsedCue(int(number), _seconds(groups[:4]), _seconds(groups[4:]), lines))
    return cues


def parse_srt(text: str) -> list[ParsedCue]:
    return parse(text, SRT_TIME)


def parse_vtt(text: str) -> list[ParsedCue]:
    header, _, body = text.partition("\n\n")
    assert header == "WEBVTT"
    return parse(body, VTT_TIME)


def transcript(*segments: tuple[float, float, str] | tuple[float, float, str, str]) -> Transcript:
    return Transcript(
        engine="test",
        language="ko",
        segments=[
            TranscriptSegment(start_s=s[0], end_s=s[1], text=s[2], speaker=(s[3:] or [None])[0])
            for s in segments
        ],
    )


@pytest.mark.parametrize(
    ("ms", "srt", "vtt"),
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (1_234, "00:00:01,234", "00:00:01.234"),
        (3_723_045, "01:02:03,045", "01:02:03.045"),
        (100 * 3600 * 1000, "100:00:00,000", "100:00:00.000"),
    ],
)
def test_timestamp_formats(ms, srt, vtt):
    assert format_timestamp(ms, ",") == srt
    assert format_timestamp(ms, ".") == vtt


def test_short_segments_become_numbered_cues_with_exact_times():
    doc = transcript((0.0, 2.5, "안녕하세요"), (2.5, 4.25, "반갑습니다"), (3661.5, 3662.0, "끝"))
    srt = to_srt(doc)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,500\n안녕하세요\n\n2\n")
    cues = parse_srt(srt)
    assert [c.number for c in cues] == [1, 2, 3]
    assert [(c.start_s, c.end_s) for c in cues] == [(0, 2.5), (2.5, 4.25), (3661.5, 3662.0)]
    assert [c.lines for c in cues] == [["안녕하세요"], ["반갑습니다"], ["끝"]]
    vtt_cues = parse_vtt(to_webvtt(doc))
    assert [(c.start_s, c.end_s, c.lines) for c in vtt_cues] == [
        (c.start_s, c.end_s, c.lines) for c in cues
    ]


def test_empty_segments_are_skipped_and_whitespace_collapsed():
    doc = transcript((0, 1, "   "), (1, 2, ""), (2, 3, "한 줄\n\n두 번째"), (3, 4, "\t"))
    cues = parse_srt(to_srt(doc))
    assert [(c.number, c.lines) for c in cues] == [(1, ["한 줄 두 번째"])]
    assert to_srt(transcript()) == ""
    assert to_webvtt(transcript((0, 1, " "))) == "WEBVTT\n"


@pytest.mark.parametrize("writer", ["srt", "vtt"])
def test_long_segments_are_split_into_readable_cues(writer):
    doc = transcript((10.0, 40.0, LONG_KOREAN))
    cues = parse_srt(to_srt(doc)) if writer == "srt" else parse_vtt(to_webvtt(doc))
    assert len(cues) >= 5
    assert [c.number for c in cues] == list(range(1, len(cues) + 1))
    assert cues[0].start_s == 10.0 and cues[-1].end_s == 40.0
    for previous, cue in itertools.pairwise(cues):
        assert cue.start_s == previous.end_s, "cues are contiguous and ordered"
    for cue in cues:
        assert len(cue.lines) <= MAX_LINES
        assert all(len(line) <= MAX_LINE_CHARS for line in cue.lines)
        assert 0 < cue.end_s - cue.start_s <= MAX_CUE_SECONDS + 0.001
    words = " ".join(" ".join(c.lines) for c in cues).split()
    assert words == LONG_KOREAN.split(), "no word lost, duplicated or reordered"


def test_a_slow_segment_is_split_by_time_even_when_its_text_fits():
    cues = parse_srt(to_srt(transcript((0, 20, "one two three four five six"))))
    assert len(cues) == 3
    assert all(c.end_s - c.start_s <= MAX_CUE_SECONDS for c in cues)
    assert " ".join(" ".join(c.lines) for c in cues) == "one two three four five six"


def test_two_lines_are_balanced():
    text = "the quick brown fox jumps over the lazy dog and keeps running far"
    [cue] = build_cues(transcript((0, 5, text)).segments)
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= 10


def test_text_without_spaces_is_cut_into_line_wide_pieces():
    text = "あ" * 100
    cues = build_cues(transcript((0, 6, text)).segments)
    assert "".join("".join(c.lines) for c in cues) == text
    assert all(len(line) <= MAX_LINE_CHARS for c in cues for line in c.lines)


def test_speakers_become_voice_spans_in_vtt_and_prefixes_in_srt():
    doc = transcript((0, 2, "안녕하세요", "A"), (2, 4, "네 반갑습니다", "B"), (4, 5, "음"))
    vtt = parse_vtt(to_webvtt(doc))
    assert [c.lines for c in vtt] == [["<v A>안녕하세요</v>"], ["<v B>네 반갑습니다</v>"], ["음"]]
    srt = parse_srt(to_srt(doc))
    assert [c.lines for c in srt] == [["A: 안녕하세요"], ["B: 네 반갑습니다"], ["음"]]


def test_vtt_escapes_markup_and_arrows_cannot_break_timing_lines():
    doc = transcript((0, 2, "a < b && c --> d", "<Bob>"))
    [cue] = parse_vtt(to_webvtt(doc))
    assert cue.lines == ["<v &lt;Bob&gt;>a &lt; b &amp;&amp; c --&gt; d</v>"]
    [srt] = parse_srt(to_srt(doc))
    assert "-->" not in srt.lines[0]


def test_zero_length_segment_still_gets_a_positive_cue():
    [cue] = parse_srt(to_srt(transcript((5, 5, "짧음"))))
    assert cue.end_s > cue.start_s


@pytest.mark.parametrize(("suffix", "writer"), [(".srt", to_srt), (".vtt", to_webvtt)])
def test_ffprobe_reads_the_files(tmp_path: Path, suffix, writer):
    doc = transcript((0, 3, "첫 문장", "A"), (3, 30, LONG_KOREAN), (31, 32, "끝"))
    path = tmp_path / f"subs{suffix}"
    path.write_text(writer(doc), encoding="utf-8")
    probe = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-of", "json"),
            *("-show_entries", "packet=pts_time,duration_time", str(path)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    packets = json.loads(probe.stdout)["packets"]
    assert len(packets) == len(build_cues(doc.segments))
    assert float(packets[-1]["pts_time"]) == pytest.approx(31.0)
    assert float(packets[-1]["duration_time"]) == pytest.approx(1.0)


def test_limits_are_validated():
    with pytest.raises(ValueError):
        build_cues([], max_line_chars=0)

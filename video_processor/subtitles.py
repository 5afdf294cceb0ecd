"""SubRip (SRT) and WebVTT subtitles from a timed transcript.

A segment becomes one or more readable cues: at most ``max_lines`` lines of at most
``max_line_chars`` characters, and at most ``max_cue_seconds`` long (a single word longer
than that is not cut in time). A longer segment is split at word boundaries into chunks of
balanced length, and its time is shared between them in proportion to their characters.
A word wider than a line (text without spaces, such as Japanese) is cut into line-wide
pieces. Segments with no text are skipped; whitespace (newlines too) is collapsed, so a
cue never holds the blank line that ends a cue.

Speakers: WebVTT uses a voice span (``<v A>text</v>``); SRT, which has none, prefixes the
first line with ``A: ``.

The flow writes them beside the result JSON::

    put_text(f"{result_key_base}.srt", to_srt(transcript), "application/x-subrip")
    put_text(f"{result_key_base}.vtt", to_webvtt(transcript), "text/vtt")
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from video_processor.models import Transcript, TranscriptSegment

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MS_PER_S = 1000
MIN_CUE_MS = 1
_VTT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ARROW = "-->"


@dataclass(frozen=True)
class Cue:
    """One subtitle on screen: a time span in milliseconds and its lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def to_srt(
    transcript: Transcript,
    *,
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_cue_seconds: float = MAX_CUE_SECONDS,
) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line after each."""
    blocks = []
    for number, cue in enumerate(
        build_cues(transcript.segments, max_line_chars, max_lines, max_cue_seconds), start=1
    ):
        lines = [line.replace(_ARROW, "->") for line in cue.lines]
        if cue.speaker:
            lines[0] = f"{cue.speaker}: {lines[0]}"
        timing = f"{format_timestamp(cue.start_ms, ',')} --> {format_timestamp(cue.end_ms, ',')}"
        blocks.append("\n".join([str(number), timing, *lines]) + "\n")
    return "\n".join(blocks)


def to_webvtt(
    transcript: Transcript,
    *,
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_cue_seconds: float = MAX_CUE_SECONDS,
) -> str:
    """WebVTT: ``WEBVTT`` header, numbered cues, ``HH:MM:SS.mmm``, ``<v Speaker>`` spans."""
    blocks = ["WEBVTT\n"]
    for number, cue in enumerate(
        build_cues(transcript.segments, max_line_chars, max_lines, max_cue_seconds), start=1
    ):
        lines = [_vtt_escape(line) for line in cue.lines]
        if cue.speaker:
            voice = _vtt_escape(cue.speaker).strip() or "?"
            lines[0] = f"<v {voice}>{lines[0]}"
            lines[-1] = f"{lines[-1]}</v>"
        timing = f"{format_timestamp(cue.start_ms, '.')} --> {format_timestamp(cue.end_ms, '.')}"
        blocks.append("\n".join([str(number), timing, *lines]) + "\n")
    return "\n".join(blocks)


def format_timestamp(ms: int, separator: str) -> str:
    """``HH:MM:SS<sep>mmm`` (hours grow past two digits if they must)."""
    ms = max(ms, 0)
    hours, rest = divmod(ms, 3600 * MS_PER_S)
    minutes, rest = divmod(rest, 60 * MS_PER_S)
    seconds, millis = divmod(rest, MS_PER_S)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def build_cues(
    segments: list[TranscriptSegment],
    max_line_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_cue_seconds: float = MAX_CUE_SECONDS,
) -> list[Cue]:
    """Every non-empty segment cut into cues that fit the line, line-count and time limits."""
    if max_line_chars < 1 or max_lines < 1 or max_cue_seconds <= 0:
        raise ValueError("subtitle limits must be positive")
    cues: list[Cue] = []
    for segment in segments:
        words = _words(segment.text, max_line_chars)
        if not words:
            continue
        start_ms = round(segment.start_s * MS_PER_S)
        end_ms = max(round(segment.end_s * MS_PER_S), start_ms + MIN_CUE_MS)
        chunks = _chunks(words, max_line_chars, max_lines)
        wanted = math.ceil((end_ms - start_ms) / (max_cue_seconds * MS_PER_S))
        if len(chunks) < wanted:
            chunks = _balanced_split(words, min(wanted, len(words)), max_line_chars, max_lines)
        cap_ms = max_cue_seconds * MS_PER_S
        cues.extend(_timed(chunks, start_ms, end_ms, cap_ms, max_line_chars, segment.speaker))
    return cues


def _words(text: str, max_line_chars: int) -> list[str]:
    """Whitespace-separated words, each at most a line wide."""
    words: list[str] = []
    for word in text.split():
        words.extend(word[i : i + max_line_chars] for i in range(0, len(word), max_line_chars))
    return words


def _width(words: list[str]) -> int:
    return sum(len(word) for word in words) + max(len(words) - 1, 0)


def _wrap(words: list[str], max_line_chars: int) -> list[list[str]]:
    """Greedy lines; for two lines, the split that balances them best."""
    if _width(words) <= max_line_chars:
        return [words]
    best: list[list[str]] | None = None
    for cut in range(1, len(words)):
        first, second = words[:cut], words[cut:]
        if _width(first) <= max_line_chars and _width(second) <= max_line_chars:
            candidate = [first, second]
            if best is None or max(map(_width, candidate)) < max(map(_width, best)):
                best = candidate
    if best is not None:
        return best
    lines: list[list[str]] = [[]]
    for word in words:
        if lines[-1] and _width([*lines[-1], word]) > max_line_chars:
            lines.append([])
        lines[-1].append(word)
    return lines


def _fits(words: list[str], max_line_chars: int, max_lines: int) -> bool:
    return len(_wrap(words, max_line_chars)) <= max_lines


def _chunks(words: list[str], max_line_chars: int, max_lines: int) -> list[list[str]]:
    """Greedy: as many words per cue as fit in ``max_lines`` lines; then even them out."""
    greedy: list[list[str]] = [[]]
    for word in words:
        if greedy[-1] and not _fits([*greedy[-1], word], max_line_chars, max_lines):
            greedy.append([])
        greedy[-1].append(word)
    if len(greedy) == 1:
        return greedy
    return _balanced_split(words, len(greedy), max_line_chars, max_lines)


def _balanced_split(
    words: list[str], count: int, max_line_chars: int, max_lines: int
) -> list[list[str]]:
    """``count`` (or a few more) chunks of similar width that each fit the cue's lines."""
    total = _width(words)
    for attempt in range(count, len(words) + 1):
        target = total / attempt
        chunks: list[list[str]] = [[]]
        consumed = 0
        for word in words:
            boundary = target * len(chunks)
            if chunks[-1] and consumed + len(word) / 2 > boundary and len(chunks) < attempt:
                chunks.append([])
            chunks[-1].append(word)
            consumed += len(word) + 1
        if all(_fits(chunk, max_line_chars, max_lines) for chunk in chunks):
            return chunks
    return [[word] for word in words]


def _timed(
    chunks: list[list[str]],
    start_ms: int,
    end_ms: int,
    cap_ms: float,
    max_line_chars: int,
    speaker: str | None,
) -> list[Cue]:
    """Share the span between the chunks by their characters, no cue over ``cap_ms``."""
    shares = _shares([max(_width(chunk), 1) for chunk in chunks], end_ms - start_ms, cap_ms)
    cues = []
    cursor, elapsed = start_ms, 0.0
    for chunk, share in zip(chunks, shares, strict=True):
        elapsed += share
        chunk_end = max(start_ms + round(elapsed), cursor + MIN_CUE_MS)
        lines = tuple(" ".join(line) for line in _wrap(chunk, max_line_chars))
        cues.append(Cue(cursor, chunk_end, lines, speaker))
        cursor = chunk_end
    return cues


def _shares(weights: list[int], span_ms: int, cap_ms: float) -> list[float]:
    """Durations proportional to ``weights``; any over ``cap_ms`` is capped, the rest refilled."""
    count = len(weights)
    if span_ms >= cap_ms * count:
        return [span_ms / count] * count
    capped: set[int] = set()
    while True:
        free = [i for i in range(count) if i not in capped]
        remaining = span_ms - cap_ms * len(capped)
        weight = sum(weights[i] for i in free)
        over = {i for i in free if remaining * weights[i] / weight > cap_ms}
        if not over:
            break
        capped |= over
    return [cap_ms if i in capped else remaining * weights[i] / weight for i in range(count)]


def _vtt_escape(text: str) -> str:
    return "".join(_VTT_ESCAPES.get(char, char) for char in text)

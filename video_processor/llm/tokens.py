"""Token estimates and segment-aligned chunking for long transcripts.

The estimate is deliberately conservative (it overcounts): a Hangul syllable or any other
non-ASCII character counts as one token, ASCII as one token per three characters (Claude's
tokenizer does better on both). When it says a prompt fits, it fits; when it says it does
not, the engine asks the API's ``count_tokens`` for the real figure before splitting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from video_processor.models import TranscriptSegment

ASCII_CHARS_PER_TOKEN = 3
# Per-message and per-line framing the estimate does not see.
OVERHEAD_TOKENS_PER_SEGMENT = 4


def estimate_tokens(text: str) -> int:
    ascii_chars = sum(1 for char in text if char.isascii())
    return (len(text) - ascii_chars) + math.ceil(ascii_chars / ASCII_CHARS_PER_TOKEN)


def chunk_segments(
    segments: Sequence[TranscriptSegment],
    max_tokens: int,
    tokens_of: Callable[[TranscriptSegment], int],
) -> list[list[TranscriptSegment]]:
    """Consecutive runs of whole segments, each within ``max_tokens`` (a segment larger than
    that on its own gets a chunk of its own), sized evenly so no chunk is a sliver."""
    costs = [tokens_of(segment) + OVERHEAD_TOKENS_PER_SEGMENT for segment in segments]
    total = sum(costs)
    if total <= max_tokens:
        return [list(segments)] if segments else []
    target = math.ceil(total / math.ceil(total / max_tokens))
    chunks: list[list[TranscriptSegment]] = []
    current: list[TranscriptSegment] = []
    used = 0
    for segment, cost in zip(segments, costs, strict=True):
        if current and (used + cost > max_tokens or used >= target):
            chunks.append(current)
            current, used = [], 0
        current.append(segment)
        used += cost
    if current:
        chunks.append(current)
    return chunks

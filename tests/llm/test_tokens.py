"""Token estimates and segment-aligned chunking."""

from video_processor.llm.tokens import chunk_segments, estimate_tokens
from video_processor.models import TranscriptSegment


def test_the_estimate_counts_each_non_ascii_character_and_ascii_by_threes():
    assert estimate_tokens("") == 0
    assert estimate_tokens("안녕하세요") == 5
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 2
    assert estimate_tokens("가abcd") == 3


def segments(*costs: int) -> list[TranscriptSegment]:
    return [
        TranscriptSegment(start_s=i, end_s=i + 1, text="x" * cost) for i, cost in enumerate(costs)
    ]


def texts(chunks: list[list[TranscriptSegment]]) -> list[list[int]]:
    return [[len(segment.text) for segment in chunk] for chunk in chunks]


def cost(segment: TranscriptSegment) -> int:
    return len(segment.text)


def test_what_fits_is_one_chunk_and_nothing_is_no_chunk():
    # Each segment costs its text plus 4 tokens of framing.
    assert texts(chunk_segments(segments(6, 6), 20, cost)) == [[6, 6]]
    assert chunk_segments([], 20, cost) == []


def test_chunks_are_even_whole_segments_within_the_limit():
    # 6 segments of 10 tokens, limit 40: two chunks of 30, not 40 + 20.
    assert texts(chunk_segments(segments(*[6] * 6), 40, cost)) == [[6, 6, 6], [6, 6, 6]]
    # Just over the limit: two chunks.
    assert texts(chunk_segments(segments(6, 6, 6), 29, cost)) == [[6, 6], [6]]
    assert texts(chunk_segments(segments(6, 6, 6), 30, cost)) == [[6, 6, 6]]


def test_a_segment_larger_than_the_limit_gets_a_chunk_of_its_own():
    assert texts(chunk_segments(segments(2, 50, 2), 20, cost)) == [[2], [50], [2]]

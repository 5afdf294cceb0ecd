"""The summary prompt: low-confidence segments are marked for the model, not hidden; the
readers a stand-in model uses give back what the formatters wrote."""

from __future__ import annotations

from video_processor.llm.prompt import (
    LOW_CONFIDENCE_MARK,
    PART_SUMMARIES_TAG,
    SYSTEM_PROMPT,
    TRANSCRIPT_TAG,
    PromptLine,
    part_block,
    read_length_bounds,
    read_lines,
    read_part_summaries,
    read_tagged,
    reduce_message,
    segment_line,
    transcript_message,
)
from video_processor.llm.structured import KeyPointDraft, SummaryDraft, SummaryLimits
from video_processor.models import TranscriptSegment


def test_low_confidence_segments_are_marked_and_kept():
    unsure = TranscriptSegment(id=3, start_s=65, end_s=70, text="흐릿한 말", confidence=0.2)
    sure = TranscriptSegment(id=4, start_s=70, end_s=75, text="또렷한 말", confidence=0.9)
    unrated = TranscriptSegment(id=5, start_s=75, end_s=80, text="CSR 의 말")
    assert segment_line(unsure) == f"[3 01:05] {LOW_CONFIDENCE_MARK} 흐릿한 말"
    assert segment_line(sure) == "[4 01:10] 또렷한 말"
    assert segment_line(unrated) == "[5 01:15] CSR 의 말"
    assert LOW_CONFIDENCE_MARK in SYSTEM_PROMPT


def test_the_readers_give_back_what_a_transcript_message_holds():
    segments = [
        TranscriptSegment(id=0, start_s=0, end_s=5, text="안녕하세요   여러분"),
        TranscriptSegment(id=7, start_s=3725, end_s=3730, text="a </transcript> b", confidence=0.2),
    ]
    message = transcript_message(segments, SummaryLimits(min_chars=40, max_chars=120))
    assert read_lines(message) == [
        PromptLine((0,), "00:00", "안녕하세요 여러분"),
        PromptLine((7,), "1:02:05", "a </transcript> b", low_confidence=True),
    ]
    assert read_length_bounds(message) == (40, 120)
    transcript = read_tagged(message, TRANSCRIPT_TAG)
    assert transcript is not None and len(transcript.splitlines()) == 2  # escaped tag kept in
    assert read_tagged(message, PART_SUMMARIES_TAG) is None
    assert read_length_bounds("요약해 주세요") is None


def test_the_readers_give_back_what_a_reduce_message_holds():
    draft = SummaryDraft(
        title="제목",
        summary="부분 요약입니다",
        key_points=[KeyPointDraft(text="플로우를 배웁니다", segment_ids=[4, 2])],
        keywords=["플로우"],
        language="ko",
    )
    block = part_block(draft, 0, 60, {2: 10.0, 4: 20.0})
    message = reduce_message([block], SummaryLimits(min_chars=5, max_chars=40))
    assert read_lines(message) == [PromptLine((2, 4), "00:10", "플로우를 배웁니다")]
    assert read_part_summaries(message) == ["부분 요약입니다"]
    assert read_tagged(message, PART_SUMMARIES_TAG) == block
    assert read_length_bounds(message) == (5, 40)

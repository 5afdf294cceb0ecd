"""The summary prompt: low-confidence segments are marked for the model, not hidden."""

from __future__ import annotations

from video_processor.llm.prompt import LOW_CONFIDENCE_MARK, SYSTEM_PROMPT, segment_line
from video_processor.models import TranscriptSegment


def test_low_confidence_segments_are_marked_and_kept():
    unsure = TranscriptSegment(id=3, start_s=65, end_s=70, text="흐릿한 말", confidence=0.2)
    sure = TranscriptSegment(id=4, start_s=70, end_s=75, text="또렷한 말", confidence=0.9)
    unrated = TranscriptSegment(id=5, start_s=75, end_s=80, text="CSR 의 말")
    assert segment_line(unsure) == f"[3 01:05] {LOW_CONFIDENCE_MARK} 흐릿한 말"
    assert segment_line(sure) == "[4 01:10] 또렷한 말"
    assert segment_line(unrated) == "[5 01:15] CSR 의 말"
    assert LOW_CONFIDENCE_MARK in SYSTEM_PROMPT

"""Korean PII masking: every pattern, and what must stay untouched."""

from __future__ import annotations

import pytest

from video_processor.llm.pii import mask_text, mask_transcript
from video_processor.models import Transcript, TranscriptSegment


@pytest.mark.parametrize(
    ("text", "masked", "kind"),
    [
        (
            "주민번호는 900101-1234567 입니다",
            "주민번호는 [주민등록번호] 입니다",
            "resident_registration_number",
        ),
        ("9001012345678", "[주민등록번호]", "resident_registration_number"),
        (
            "외국인등록번호 850315-5123456",
            "외국인등록번호 [주민등록번호]",
            "resident_registration_number",
        ),
        ("전화 010-1234-5678로 주세요", "전화 [전화번호]로 주세요", "phone_number"),
        ("010 1234 5678", "[전화번호]", "phone_number"),
        ("01012345678", "[전화번호]", "phone_number"),
        ("+82 10-1234-5678", "[전화번호]", "phone_number"),
        ("사무실 02-123-4567", "사무실 [전화번호]", "phone_number"),
        ("031.765.4321", "[전화번호]", "phone_number"),
        ("대표번호 1588-1234", "대표번호 [전화번호]", "phone_number"),
        ("카드 1234-5678-9012-3456", "카드 [카드번호]", "card_number"),
        ("1234 5678 9012 3456", "[카드번호]", "card_number"),
        ("아멕스 3782-822463-10005", "아멕스 [카드번호]", "card_number"),
        ("계좌번호는 110-123-456789 입니다", "계좌번호는 [계좌번호] 입니다", "bank_account_number"),
        ("국민 123456-01-234567", "국민 [계좌번호]", "bank_account_number"),
        ("계좌 12345678901234 로", "계좌 [계좌번호] 로", "bank_account_number"),
        ("메일은 hong.gildong@example.co.kr", "메일은 [이메일]", "email"),
    ],
)
def test_each_pattern_is_masked(text, masked, kind):
    result = mask_text(text)
    assert result.text == masked
    assert dict(result.counts) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "2024년 3월 15일 오후 2시 30분 회의",
        "참석자는 12명, 예산은 3500만 원입니다",
        "버전 1.2.3 을 배포했습니다",
        "2024-03-15 에 출시합니다",
        "전체의 45.6% 입니다",
    ],
)
def test_ordinary_numbers_are_not_masked(text):
    assert mask_text(text).text == text


def test_masking_a_transcript_keeps_ids_times_and_counts():
    transcript = Transcript(
        engine="local",
        language="ko",
        segments=[
            TranscriptSegment(start_s=0, end_s=2, text="안녕하세요"),
            TranscriptSegment(start_s=2, end_s=4, text="연락처 010-9876-5432"),
        ],
    )
    masked, counts = mask_transcript(transcript)
    assert [s.id for s in masked.segments] == [0, 1]
    assert masked.segments[0] == transcript.segments[0]
    assert masked.segments[1].text == "연락처 [전화번호]"
    assert masked.segments[1].start_s == 2
    assert counts == {"phone_number": 1}

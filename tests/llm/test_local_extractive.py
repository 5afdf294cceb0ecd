"""The offline extractive summariser."""

from __future__ import annotations

import pytest

from video_processor.errors import ErrorCode, SummaryError
from video_processor.llm.local_extractive import LocalExtractiveSummarizer, split_sentences
from video_processor.models import Transcript, TranscriptSegment

MEETING = [
    "오늘 회의에서는 영상 서비스 출시 일정을 논의했습니다.",
    "점심 메뉴는 김밥이었습니다.",
    "개발팀은 영상 서비스 업로드 기능을 다음 주까지 완성합니다.",
    "날씨가 맑았어요.",
    "영상 서비스 출시 전에 요약 기능을 테스트하기로 했습니다.",
]


def _transcript(*texts: str) -> Transcript:
    segments = [
        TranscriptSegment(start_s=float(index), end_s=index + 1.0, text=text)
        for index, text in enumerate(texts)
    ]
    return Transcript(engine="local", language="ko", segments=segments)


def test_picks_the_sentences_about_the_main_topic_in_their_original_order():
    summary = LocalExtractiveSummarizer(max_chars=120, max_sentences=2).summarize(
        _transcript(" ".join(MEETING))
    )
    assert (summary.engine, summary.model) == ("local", "extractive-v1")
    assert (summary.input_tokens, summary.output_tokens) == (0, 0)
    assert summary.text == f"{MEETING[0]} {MEETING[4]}"


def test_keeps_within_max_chars():
    transcript = _transcript(*MEETING * 3)
    for max_chars in (20, 60, 150, 500):
        text = LocalExtractiveSummarizer(max_chars=max_chars).summarize(transcript).text
        assert text
        assert len(text) <= max_chars


def test_sentences_keep_transcript_order():
    summarizer = LocalExtractiveSummarizer(max_chars=500, max_sentences=5)
    text = summarizer.summarize(_transcript(*MEETING)).text
    positions = [text.find(sentence) for sentence in MEETING if sentence in text]
    assert len(positions) >= 2
    assert positions == sorted(positions)


def test_splits_korean_endings_without_punctuation():
    text = "회의를 시작하겠습니다 개발팀이 발표했어요 다음 일정은 언제인가요 내일 다시 모이죠"
    assert split_sentences(text) == [
        "회의를 시작하겠습니다",
        "개발팀이 발표했어요",
        "다음 일정은 언제인가요",
        "내일 다시 모이죠",
    ]


def test_text_without_any_sentence_boundary_is_cut_by_length():
    words = " ".join(f"단어{index}" for index in range(200))
    pieces = split_sentences(words, max_chars=50)
    assert len(pieces) > 1
    assert all(len(piece) <= 50 for piece in pieces)
    assert " ".join(pieces) == words


def test_summarizes_unpunctuated_whisper_output():
    segments = [sentence.rstrip(".") for sentence in MEETING]
    text = LocalExtractiveSummarizer(max_chars=80).summarize(_transcript(*segments)).text
    assert 0 < len(text) <= 80
    assert "영상 서비스" in text


def test_is_deterministic():
    summarizer = LocalExtractiveSummarizer(max_chars=100)
    transcript = _transcript(*MEETING)
    assert len({summarizer.summarize(transcript).text for _ in range(5)}) == 1


@pytest.mark.parametrize("texts", [(), ("",), ("  ", "\n")])
def test_empty_transcript_is_a_summary_error(texts: tuple[str, ...]):
    with pytest.raises(SummaryError, match="transcript is empty") as caught:
        LocalExtractiveSummarizer().summarize(_transcript(*texts))
    assert caught.value.code is ErrorCode.LLM_BAD_RESPONSE


def test_rejects_a_budget_that_fits_nothing():
    with pytest.raises(ValueError, match="positive"):
        LocalExtractiveSummarizer(max_chars=0)

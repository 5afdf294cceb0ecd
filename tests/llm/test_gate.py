"""The transcript quality gate: silence, STT hallucinations, loops, and masking."""

from __future__ import annotations

import pytest

from video_processor.errors import ErrorCode, TranscriptRejected
from video_processor.llm.gate import (
    GateThresholds,
    is_hallucination,
    repeated_ngram_ratio,
    screen_transcript,
)
from video_processor.models import Transcript, TranscriptSegment

THRESHOLDS = GateThresholds(min_chars=10, min_speech_ratio=0.05, max_repeated_ngram_ratio=0.6)
LECTURE = [
    "오늘 강의에서는 파이썬의 비동기 프로그래밍을 다룹니다.",
    "먼저 이벤트 루프가 무엇인지 간단한 예제로 살펴보겠습니다.",
    "코루틴은 await 키워드를 만나면 실행을 잠시 양보합니다.",
    "그래서 네트워크 요청 여러 개를 동시에 기다릴 수 있습니다.",
    "마지막으로 흔히 하는 실수 세 가지를 정리해 보겠습니다.",
]


def transcript(*texts: str, seconds: float = 5.0, gap: float = 0.0) -> Transcript:
    return Transcript(
        engine="local",
        language="ko",
        segments=[
            TranscriptSegment(
                start_s=index * (seconds + gap), end_s=index * (seconds + gap) + seconds, text=text
            )
            for index, text in enumerate(texts)
        ],
    )


def screen(t: Transcript, audio_s: float, mask: bool = False):
    return screen_transcript(t, audio_duration_s=audio_s, thresholds=THRESHOLDS, mask_pii=mask)


def test_speech_passes_with_its_figures():
    screened = screen(transcript(*LECTURE), audio_s=30)
    report = screened.report
    assert screened.transcript.segments == transcript(*LECTURE).segments
    assert report.speech_segments == report.segments == 5
    assert report.speech_ratio == pytest.approx(25 / 30, abs=1e-3)
    assert report.dropped_segment_ids == []


@pytest.mark.parametrize("texts", [(), ("",), (" ", "[음악]", "♪♪")], ids=["none", "empty", "tags"])
def test_silence_is_rejected_as_no_speech(texts):
    with pytest.raises(TranscriptRejected, match="no speech recognised") as caught:
        screen(transcript(*texts), audio_s=600)
    assert caught.value.code is ErrorCode.STT_BAD_RESPONSE
    assert not caught.value.retryable
    assert caught.value.message.startswith("transcript rejected by the quality gate: ")


@pytest.mark.parametrize(
    "phrase",
    [
        "시청해주셔서 감사합니다.",
        "시청해 주셔서 감사합니다!",
        "구독과 좋아요 부탁드립니다",
        "MBC 뉴스 이덕영입니다.",
        "KBS 뉴스 김철수 기자입니다",
        "한글자막 by 한효정",
        "다음 영상에서 만나요~ 시청해주셔서 감사합니다",
    ],
)
def test_known_hallucination_phrases_are_recognised(phrase):
    assert is_hallucination(phrase)


@pytest.mark.parametrize(
    "text", ["감사합니다", "시청해주셔서 감사합니다 그리고 오늘의 주제는 금리입니다", "MBC 뉴스"]
)
def test_real_speech_is_not_a_hallucination(text):
    assert not is_hallucination(text)


def test_whisper_on_silence_is_rejected_not_summarised():
    # What Whisper typically writes for ten minutes of silence.
    t = transcript(
        "시청해주셔서 감사합니다.", "구독과 좋아요 부탁드립니다.", "MBC 뉴스 이덕영입니다."
    )
    with pytest.raises(TranscriptRejected, match="only known STT hallucination phrases"):
        screen(t, audio_s=600)


def test_hallucinated_segments_are_dropped_from_real_speech():
    t = transcript(*LECTURE, "시청해주셔서 감사합니다.")
    screened = screen(t, audio_s=30)
    assert screened.report.dropped_segment_ids == [5]
    assert [s.id for s in screened.transcript.segments] == [0, 1, 2, 3, 4]  # ids kept


def test_a_little_speech_in_a_long_silence_is_rejected_by_the_speech_ratio():
    t = transcript("잠깐 마이크 테스트 중입니다. 들리시나요?", seconds=3)
    with pytest.raises(TranscriptRejected, match=r"speech covers 0\.5% of 600 s"):
        screen(t, audio_s=600)


def test_a_hallucination_loop_is_rejected():
    loop = ["오늘은 여기까지 하겠습니다 감사합니다"] * 30
    with pytest.raises(TranscriptRejected, match="hallucination loop") as caught:
        screen(transcript(*LECTURE[:1], *loop), audio_s=160)
    assert "29 loop segments hold" in caught.value.message


def test_repetition_of_ordinary_speech_is_low():
    ratio = repeated_ngram_ratio(" ".join(LECTURE * 2))
    assert ratio is not None and ratio <= 0.55  # said twice over: half repeats, still allowed
    assert repeated_ngram_ratio(" ".join(LECTURE)) == pytest.approx(0.0)
    assert repeated_ngram_ratio("너무 짧은 문장") is None


def test_pii_is_masked_in_what_the_summariser_reads_when_asked():
    t = transcript(*LECTURE, "문의는 010-1234-5678 또는 help@example.com 으로 주세요.")
    masked = screen(t, audio_s=30, mask=True)
    assert masked.transcript.segments[5].text == "문의는 [전화번호] 또는 [이메일] 으로 주세요."
    assert masked.report.masked == {"phone_number": 1, "email": 1}
    plain = screen(t, audio_s=30, mask=False)
    assert "010-1234-5678" in plain.transcript.segments[5].text


def test_unknown_audio_duration_skips_the_speech_ratio():
    assert screen(transcript(*LECTURE), audio_s=0).report.speech_ratio is None

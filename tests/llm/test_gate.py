"""The transcript quality gate: silence, STT hallucinations, loops, and masking."""

from __future__ import annotations

import pytest

from video_processor.errors import ErrorCode, SpeechTooNoisy, TranscriptRejected
from video_processor.llm.gate import (
    GateThresholds,
    dominant_share,
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
    assert "29 loop segments cover 94% of the speech time" in caught.value.message


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


def test_a_short_loop_of_one_word_in_identical_segments_is_rejected():
    # The engine's own output on short espeak-ng Korean clips: 10 segments of 2 s.
    t = Transcript(
        engine="local",
        language="ko",
        segments=[
            TranscriptSegment(start_s=2.0 * i, end_s=2.0 * i + 2.0, text="아마도")
            for i in range(10)
        ],
    )
    with pytest.raises(TranscriptRejected, match="hallucination loop") as caught:
        screen(t, audio_s=20)
    assert "9 loop segments cover 90%" in caught.value.message
    assert caught.value.code is ErrorCode.STT_BAD_RESPONSE


def test_a_loop_inside_one_short_segment_is_caught():
    assert dominant_share("오, 오, 오, 오, 오, 오") == 1.0
    with pytest.raises(TranscriptRejected, match="hallucination loop"):
        screen(transcript("슬 패받 슬 패받 슬 패받 슬 패받", seconds=10), audio_s=10)


def test_a_run_of_identical_segments_in_real_speech_is_dropped_not_summarised():
    t = transcript(*LECTURE, *["감사합니다 여러분"] * 4)
    screened = screen(t, audio_s=60)
    assert screened.report.loop_segment_ids == [6, 7, 8]  # the first of the run stays
    assert [s.id for s in screened.transcript.segments] == [0, 1, 2, 3, 4, 5]


def test_whisper_compression_ratio_marks_a_loop_whatever_its_length():
    segments = [
        TranscriptSegment(start_s=0, end_s=5, text=LECTURE[0], compression_ratio=1.4),
        TranscriptSegment(start_s=5, end_s=30, text=LECTURE[1] * 3, compression_ratio=3.9),
    ]
    t = Transcript(engine="local", language="ko", segments=segments)
    with pytest.raises(TranscriptRejected, match="1 loop segments cover 83%"):
        screen(t, audio_s=30)
    speech = [
        TranscriptSegment(start_s=30 + 10 * i, end_s=40 + 10 * i, text=text)
        for i, text in enumerate(LECTURE[1:])
    ]
    passing = Transcript(engine="local", language="ko", segments=[*segments, *speech])
    assert screen(passing, audio_s=60).report.loop_segment_ids == [1]


def test_short_varied_speech_is_not_called_a_loop():
    screened = screen(transcript("네 맞습니다. 그럼 내일 회의에서 다시 이야기해요."), audio_s=5)
    assert screened.report.loop_segment_ids == []


def test_low_confidence_share_is_reported():
    segments = [
        TranscriptSegment(start_s=0, end_s=10, text=LECTURE[0], confidence=0.2),
        TranscriptSegment(start_s=10, end_s=40, text=LECTURE[1], confidence=0.8),
    ]
    t = Transcript(engine="local", language="ko", segments=segments)
    assert screen(t, audio_s=40).report.low_confidence_share == 0.25


def test_nothing_recognised_under_broadband_noise_is_its_own_outcome():
    noisy = Transcript(engine="local", language="ko", segments=[], noisy_share=0.9)
    with pytest.raises(SpeechTooNoisy, match="speech too noisy to transcribe") as caught:
        screen(noisy, audio_s=30)
    assert caught.value.code is ErrorCode.STT_BAD_RESPONSE
    quiet = noisy.model_copy(update={"noisy_share": 0.0})
    with pytest.raises(TranscriptRejected, match="no speech recognised") as silent:
        screen(quiet, audio_s=30)
    assert not isinstance(silent.value, SpeechTooNoisy)

"""The transcript quality gate: silence, STT hallucinations, loops, and masking."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from video_processor.config import Settings
from video_processor.errors import ErrorCode, SpeechTooNoisy, TranscriptRejected
from video_processor.llm.gate import (
    GateReport,
    GateThresholds,
    ScreenedTranscript,
    dominant_share,
    is_dominated,
    is_hallucination,
    is_non_speech,
    normalise,
    repeated_ngram_ratio,
    screen_for_summary,
    screen_transcript,
    transcript_to_store,
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


def screen(t: Transcript, audio_s: float, mask: bool = False) -> ScreenedTranscript:
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


# The phrases as Whisper writes them, spaced and punctuated: each one alone is filler.
@pytest.mark.parametrize(
    "phrase",
    [
        "시청해 주셔서 감사합니다.",
        "시청해 주셔서 정말 감사합니다",
        "오늘도 시청해 주셔서 감사합니다",
        "끝까지 시청해 주셔서 감사합니다!",
        "시청 감사합니다",
        "구독과 좋아요 부탁드립니다",
        "구독과 좋아요",
        "구독, 좋아요 부탁드립니다",
        "구독 좋아요 알림 설정 부탁드립니다",
        "좋아요와 구독 부탁드립니다",
        "구독과 좋아요 그리고 알림 설정 부탁드립니다",
        "다음 영상에서 만나요",
        "다음 영상에서 뵙겠습니다",
        "다음 시간에 만나요",
        "영상이 도움이 되셨다면 구독과 좋아요 부탁드립니다",
        "SBS 뉴스 박영희입니다",
        "JTBC 뉴스 이민수 기자입니다",
        "YTN 뉴스 최하나입니다",
        "TV조선 뉴스 정우성입니다",
        "채널A 뉴스 김민준 기자입니다",
        "MBN 뉴스 한지민입니다",
        "자막 제공: 배달의 민족",
        "자막 제작 홍길동",
        "자막 BY 누군가",
        "한글자막 By 누군가",
    ],
)
def test_every_known_phrase_alone_is_a_hallucination(phrase: str):
    assert is_hallucination(phrase)


@pytest.mark.parametrize("text", ["", "!!! ...", "EBS 뉴스 박영희입니다", "자막", "구독과"])
def test_empty_and_near_miss_texts_are_not_hallucinations(text: str):
    assert is_hallucination(text) is False


@pytest.mark.parametrize(
    "text", ["[음악]", "(박수)", "♪♪", "♩ ♫ ♬", "~", "…", "", "（웃음）", "【音楽】", "[음악] ♪"]
)
def test_tags_and_symbols_are_non_speech(text: str):
    assert is_non_speech(text)


@pytest.mark.parametrize("text", ["음악", "[음악] 안녕하세요", "♪ 사랑해 ♪", "(박수"])
def test_words_are_speech(text: str):
    assert not is_non_speech(text)


def test_tag_segments_are_left_out_without_being_counted_as_dropped():
    t = transcript(LECTURE[0], "[음악]", LECTURE[1], "♪", LECTURE[2], "(박수)")
    screened = screen(t, audio_s=30)
    assert [s.id for s in screened.transcript.segments] == [0, 2, 4]
    assert screened.report.dropped_segment_ids == []
    assert screened.report.segments == 6 and screened.report.speech_segments == 3


def test_the_report_carries_the_measured_figures():
    segments = [
        TranscriptSegment(start_s=0, end_s=3.33333, text=LECTURE[0], confidence=0.2),
        TranscriptSegment(start_s=5, end_s=15, text=LECTURE[1], confidence=0.9),
        TranscriptSegment(start_s=15, end_s=16, text="구독과 좋아요 부탁드립니다"),
    ]
    report = screen(Transcript(engine="local", language="ko", segments=segments), 30.0001).report
    assert report == GateReport(
        segments=3,
        speech_segments=2,
        dropped_segment_ids=[2],
        speech_chars=len(normalise(LECTURE[0] + LECTURE[1])),
        speech_s=13.333,
        audio_s=30.0,
        speech_ratio=0.4444,
        repeated_ngram_ratio=None,
        loop_segment_ids=[],
        dominant_share=None,
        low_confidence_share=0.25,
        masked={},
    )


def test_min_chars_is_inclusive():
    thresholds = GateThresholds(min_chars=10, min_speech_ratio=0, max_repeated_ngram_ratio=1)
    kept = screen_transcript(
        transcript("가나다라마 바사아자차"),
        audio_duration_s=5,
        thresholds=thresholds,
        mask_pii=False,
    )
    assert kept.report.speech_chars == 10
    with pytest.raises(TranscriptRejected) as caught:
        screen_transcript(
            transcript("가나다라마 바사아자"),
            audio_duration_s=5,
            thresholds=thresholds,
            mask_pii=False,
        )
    assert caught.value.message == (
        "transcript rejected by the quality gate: no speech recognised: 9 characters of speech"
        " < 10 (1/1 segments kept, 9 characters, speech ratio 1.00, repeated 3-grams n/a)"
    )


def test_a_zero_min_chars_still_rejects_an_empty_transcript():
    thresholds = GateThresholds(min_chars=0, min_speech_ratio=0, max_repeated_ngram_ratio=1)
    with pytest.raises(TranscriptRejected, match="0 characters of speech < 0"):
        screen_transcript(transcript(), audio_duration_s=5, thresholds=thresholds, mask_pii=False)
    kept = screen_transcript(
        transcript("네"), audio_duration_s=5, thresholds=thresholds, mask_pii=False
    )
    assert kept.report.speech_chars == 1


def test_min_speech_ratio_is_inclusive():
    assert screen(transcript(LECTURE[0]), audio_s=100).report.speech_ratio == 0.05
    with pytest.raises(TranscriptRejected) as caught:
        screen(transcript(LECTURE[0]), audio_s=101)
    assert caught.value.message.startswith(
        "transcript rejected by the quality gate: speech covers 5.0% of 101 s of audio < 5% "
        "(1/1 segments kept, "
    )


def test_the_repeated_ngram_limit_is_exclusive():
    text = " ".join(LECTURE * 2)
    ratio = repeated_ngram_ratio(text)
    assert ratio is not None
    t = transcript(*LECTURE, *LECTURE)

    def with_limit(limit: float) -> GateThresholds:
        return GateThresholds(min_chars=10, min_speech_ratio=0.05, max_repeated_ngram_ratio=limit)

    passed = screen_transcript(t, audio_duration_s=50, thresholds=with_limit(ratio), mask_pii=False)
    assert passed.report.repeated_ngram_ratio == round(ratio, 4)
    with pytest.raises(TranscriptRejected) as caught:
        screen_transcript(t, audio_duration_s=50, thresholds=with_limit(0.4), mask_pii=False)
    assert caught.value.message == (
        "transcript rejected by the quality gate: 49% of its 3-word sequences are repeats > 40% "
        "(an STT hallucination loop) (10/10 segments kept, 244 characters, speech ratio 1.00, "
        "repeated 3-grams 0.49)"
    )


def test_repetition_needs_twenty_three_word_sequences():
    assert repeated_ngram_ratio(" ".join(f"낱말{i}" for i in range(21))) is None
    assert repeated_ngram_ratio(" ".join(f"낱말{i}" for i in range(22))) == 0.0
    assert repeated_ngram_ratio("가 나 다 " * 8) == pytest.approx(1 - 3 / 22)
    assert repeated_ngram_ratio("가, 나. 다! " * 8) == pytest.approx(1 - 3 / 22)


def test_a_phrase_dominates_from_three_repeats_and_half_the_words():
    assert dominant_share("가 가 나 다") is None
    assert dominant_share("가 가 가 나 다 라") == 0.5
    assert is_dominated("가 가 가 나 다 라")
    assert not is_dominated("가 가 가 나 다 라 마")
    # Phrases of up to four words: a five-word phrase counts by its four-word part.
    assert dominant_share("a b c d e a b c d e a b c d e") == pytest.approx(12 / 15)
    assert dominant_share("") is None


def test_two_identical_segments_are_not_a_loop_three_are():
    two = screen(transcript(*LECTURE, "감사합니다 여러분", "감사합니다 여러분"), audio_s=35)
    assert two.report.loop_segment_ids == []
    three = screen(transcript(*LECTURE, *["감사합니다 여러분"] * 3), audio_s=40)
    assert three.report.loop_segment_ids == [6, 7]


def loop_and_speech(loop_s: float) -> Transcript:
    return Transcript(
        engine="local",
        language="ko",
        segments=[
            TranscriptSegment(start_s=0, end_s=5, text=LECTURE[0]),
            TranscriptSegment(start_s=5, end_s=10, text=LECTURE[1]),
            TranscriptSegment(start_s=10, end_s=10 + loop_s, text=LECTURE[2], compression_ratio=3),
        ],
    )


def test_loops_are_rejected_from_half_the_speech_time():
    assert screen(loop_and_speech(9.9), audio_s=20).report.loop_segment_ids == [2]
    with pytest.raises(TranscriptRejected) as caught:
        screen(loop_and_speech(10), audio_s=20)
    assert caught.value.message.startswith(
        "transcript rejected by the quality gate: 1 loop segments cover 50% of the speech time "
        "(an STT hallucination loop) (2/3 segments kept, "
    )


def test_loops_without_duration_are_all_loop():
    segments = [TranscriptSegment(start_s=0, end_s=0, text=LECTURE[0], compression_ratio=3)]
    with pytest.raises(TranscriptRejected, match="1 loop segments cover 100% of the speech time"):
        screen(Transcript(engine="local", language="ko", segments=segments), audio_s=10)


def test_a_dominated_transcript_is_rejected_with_the_share():
    with pytest.raises(TranscriptRejected) as caught:
        screen(transcript("가 가 나", "가 다 라"), audio_s=10)
    assert caught.value.message == (
        "transcript rejected by the quality gate: one phrase makes up 50% of its words "
        "(an STT hallucination loop) (2/2 segments kept, 6 characters, speech ratio 1.00, "
        "repeated 3-grams n/a)"
    )


def test_noise_is_named_from_half_the_audio_and_not_for_hallucinations():
    noisy = Transcript(engine="local", language="ko", segments=[], noisy_share=0.5)
    with pytest.raises(SpeechTooNoisy) as caught:
        screen(noisy, audio_s=30)
    assert caught.value.message == (
        "speech too noisy to transcribe: 50% of the audio is broadband noise and "
        "no speech recognised: 0 characters of speech < 10"
    )
    with pytest.raises(TranscriptRejected) as quiet:
        screen(noisy.model_copy(update={"noisy_share": 0.49}), audio_s=30)
    assert not isinstance(quiet.value, SpeechTooNoisy)
    filler = transcript("시청해주셔서 감사합니다.").model_copy(update={"noisy_share": 0.9})
    with pytest.raises(TranscriptRejected) as dropped:
        screen(filler, audio_s=30)
    assert not isinstance(dropped.value, SpeechTooNoisy)
    assert dropped.value.message.startswith(
        "transcript rejected by the quality gate: only known STT hallucination phrases "
        "(1 segments): 0 characters of speech < 10 (0/1 segments kept"
    )


def test_the_settings_choose_the_thresholds_masking_and_stored_transcript():
    t = transcript(*LECTURE, "문의는 010-1234-5678 로 주세요.")
    assert screen_for_summary(t, 30, Settings(transcript_min_chars=10)).report.masked == {
        "phone_number": 1
    }
    plain = screen_for_summary(t, 30, Settings(pii_mask_llm_input=False))
    assert plain.transcript == t and plain.report.masked == {}
    with pytest.raises(TranscriptRejected, match="< 1000"):
        screen_for_summary(t, 30, Settings(transcript_min_chars=1000))
    with pytest.raises(TranscriptRejected, match="< 90%"):
        screen_for_summary(
            t, 100, Settings(transcript_min_speech_ratio=0.9, pii_mask_llm_input=False)
        )
    looped = transcript(*LECTURE, *LECTURE)
    with pytest.raises(TranscriptRejected, match="> 10%"):
        screen_for_summary(looped, 50, Settings(transcript_max_repeated_ngram_ratio=0.1))
    assert transcript_to_store(t, Settings()) == t
    stored = transcript_to_store(t, Settings(transcript_store_policy="masked"))
    assert stored.segments[5].text == "문의는 [전화번호] 로 주세요."


def test_threshold_defaults_and_bounds():
    assert GateThresholds() == GateThresholds(
        min_chars=10, min_speech_ratio=0.05, max_repeated_ngram_ratio=0.6
    )
    GateThresholds(min_chars=0, min_speech_ratio=0, max_repeated_ngram_ratio=1)
    GateThresholds(min_speech_ratio=1)
    for bad in (
        {"min_chars": -1},
        {"min_speech_ratio": -0.1},
        {"min_speech_ratio": 1.1},
        {"max_repeated_ngram_ratio": 0},
        {"max_repeated_ngram_ratio": 1.1},
    ):
        with pytest.raises(ValidationError):
            GateThresholds.model_validate(bad)
    with pytest.raises(ValidationError):
        THRESHOLDS.min_chars = 1  # type: ignore[misc]


def test_reports_and_screened_transcripts_are_frozen_with_defaults():
    report = GateReport(
        segments=0,
        speech_segments=0,
        dropped_segment_ids=[],
        speech_chars=0,
        speech_s=0,
        audio_s=0,
        speech_ratio=None,
        repeated_ngram_ratio=None,
    )
    assert (report.loop_segment_ids, report.dominant_share, report.low_confidence_share) == (
        [],
        None,
        0.0,
    )
    assert report.masked == {}
    with pytest.raises(ValidationError):
        report.segments = 1  # type: ignore[misc]
    screened = screen(transcript(*LECTURE), audio_s=30)
    with pytest.raises(ValidationError):
        screened.report = report  # type: ignore[misc]


def test_filler_after_a_pattern_is_followed_to_the_end():
    assert is_hallucination("MBC 뉴스 이덕영입니다. 시청해주셔서 감사합니다")
    assert is_hallucination("MBC 뉴스 이덕영입니다 오늘의 날씨") is False
    assert is_hallucination("시청해주셔서 감사합니다 오늘의 날씨") is False


def test_one_phrase_over_all_words_dominates():
    assert dominant_share("가 가 가") == 1.0
    assert dominant_share("사과 나무 사과 바다 사과 하늘 구름") == pytest.approx(3 / 7)


def test_segments_around_filler_and_loops_are_kept():
    t = transcript("시청해주셔서 감사합니다.", LECTURE[0], "오 오 오 오", *LECTURE[1:])
    screened = screen(t, audio_s=30)
    assert screened.report.dropped_segment_ids == [0]
    assert screened.report.loop_segment_ids == [2]
    assert [s.id for s in screened.transcript.segments] == [1, 3, 4, 5, 6]
    run = screen(transcript(LECTURE[0], *["감사합니다 여러분"] * 3, LECTURE[1]), audio_s=25)
    assert run.report.loop_segment_ids == [2, 3]


def test_short_segments_count_their_own_length():
    segments = [
        TranscriptSegment(start_s=0, end_s=0.3, text=LECTURE[0]),
        TranscriptSegment(start_s=0.3, end_s=0.5, text=LECTURE[1], compression_ratio=3),
    ]
    report = screen(Transcript(engine="local", language="ko", segments=segments), 1.23456).report
    assert (report.speech_s, report.audio_s, report.loop_segment_ids) == (0.3, 1.235, [1])
    assert report.speech_ratio == round(0.3 / 1.23456, 4)
    longer = screen(transcript(*LECTURE), audio_s=20).report
    assert longer.speech_ratio == 1.0
    kept = screen(transcript("사과 나무 사과 바다 사과 하늘 구름"), audio_s=5).report
    assert kept.dominant_share == 0.4286


def test_every_problem_is_named():
    t = transcript(*LECTURE, *LECTURE)
    limit = GateThresholds(min_chars=10, min_speech_ratio=0.5, max_repeated_ngram_ratio=0.4)
    with pytest.raises(TranscriptRejected) as caught:
        screen_transcript(t, audio_duration_s=1000, thresholds=limit, mask_pii=False)
    assert caught.value.message.startswith(
        "transcript rejected by the quality gate: speech covers 5.0% of 1000 s of audio < 50%; "
        "49% of its 3-word sequences are repeats > 40%"
    )


def test_a_loop_without_duration_next_to_speech_takes_no_speech_time():
    segments = [
        *transcript(*LECTURE).segments,
        TranscriptSegment(start_s=25, end_s=25, text=LECTURE[0], compression_ratio=3),
    ]
    t = Transcript(engine="local", language="ko", segments=segments)
    assert screen(t, audio_s=30).report.loop_segment_ids == [5]

"""The transcript quality gate, run before any summariser sees a transcript.

Speech-to-text on silence, music or noise does not come back empty: Whisper in particular
"hears" the closing lines of Korean YouTube videos and broadcast news ("시청해 주셔서
감사합니다", "구독과 좋아요 부탁드립니다", "MBC 뉴스 이덕영입니다") or loops on one phrase.
A summary of that is invented from noise, so the gate

1. drops segments that are only known hallucination phrases or non-speech tags
   ("[음악]", "♪"); the summariser never sees them (their ids stay valid in the result);
2. drops loop segments, whatever the transcript's length: Whisper's own loop signal (a
   compression ratio over ``models.LOOP_COMPRESSION_RATIO``), a segment dominated by one word or
   phrase, and the repeats in a run of ``IDENTICAL_RUN`` or more identical segments;
3. rejects the transcript as a loop when loop segments cover at least ``MAX_LOOP_SHARE``
   of its speech time, when what remains is dominated by one word or phrase, or when more
   than ``max_repeated_ngram_ratio`` of its word 3-grams are repeats;
4. rejects it when what remains has fewer than ``min_chars`` characters ("no speech
   recognised", or "speech too noisy to transcribe" when most of the audio is broadband
   noise), or covers less than ``min_speech_ratio`` of the audio;
5. masks Korean personal data in what it passes on, when asked to.

A rejection raises ``TranscriptRejected`` (``STT_BAD_RESPONSE``; ``SpeechTooNoisy`` for
noise): the speech-to-text stage produced nothing summarisable, and retrying the same
audio cannot change that.

The speech ratio is only as precise as the engine's timestamps: Whisper segments follow
the speech, a CLOVA CSR segment spans its whole ≤55 s chunk (so for CSR the ratio is the
share of chunks in which anything was recognised).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from video_processor.config import Settings
from video_processor.errors import SpeechTooNoisy, TranscriptRejected
from video_processor.llm.pii import mask_transcript
from video_processor.models import Transcript, TranscriptSegment

NGRAM_WORDS = 3
# Fewer 3-grams than this is too few for the repeated-3-gram ratio (the checks below are
# what catch short loops).
MIN_NGRAMS_FOR_REPETITION = 20
# "아마도" ten times in ten segments: a run of identical segments is a loop.
IDENTICAL_RUN = 3
# A text is dominated when one phrase of up to DOMINANT_MAX_WORDS words, seen at least
# DOMINANT_MIN_REPEATS times, makes up DOMINANT_SHARE of its words.
DOMINANT_MAX_WORDS = 4
DOMINANT_MIN_REPEATS = 3
DOMINANT_SHARE = 0.5
MAX_LOOP_SHARE = 0.5
# Most of the audio broadband noise: an empty transcript is noise, not silence.
NOISY_SHARE = 0.5
_WORD = re.compile(r"\w+")

# Known Korean STT hallucinations on silence, compared after normalisation (no spaces or
# punctuation). A segment is dropped only when it consists entirely of such phrases.
HALLUCINATION_PHRASES: tuple[str, ...] = (
    "시청해주셔서감사합니다",
    "시청해주셔서정말감사합니다",
    "오늘도시청해주셔서감사합니다",
    "끝까지시청해주셔서감사합니다",
    "시청감사합니다",
    "구독과좋아요부탁드립니다",
    "구독과좋아요",
    "구독좋아요부탁드립니다",
    "구독좋아요알림설정부탁드립니다",
    "좋아요와구독부탁드립니다",
    "구독과좋아요그리고알림설정부탁드립니다",
    "다음영상에서만나요",
    "다음영상에서뵙겠습니다",
    "다음시간에만나요",
    "영상이도움이되셨다면구독과좋아요부탁드립니다",
)
HALLUCINATION_PATTERNS: tuple[re.Pattern[str], ...] = (
    # "MBC 뉴스 이덕영입니다", "KBS 뉴스 김철수 기자입니다"
    re.compile(r"(?:MBC|KBS|SBS|JTBC|YTN|TV조선|채널A|MBN)뉴스[가-힣]{2,4}(?:기자)?입니다"),
    # "자막 제공: …", "한글자막 by …", "자막 제작 …"
    re.compile(r"(?:한글)?자막(?:제공|제작|by|BY|By).*"),
)
# Longest first: "구독과좋아요" must not shadow "구독과좋아요그리고알림설정부탁드립니다".
_PHRASES_LONGEST_FIRST = sorted(HALLUCINATION_PHRASES, key=len, reverse=True)
_NON_SPEECH = re.compile(r"^(?:[\[(（【][^\])）】]*[\])）】]|[♪♩♫♬~…\s.])*$")
_NORMALISE_DROP = re.compile(r"[\s\W_]+")


class GateThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_chars: int = Field(default=10, ge=0)
    min_speech_ratio: float = Field(default=0.05, ge=0, le=1)
    max_repeated_ngram_ratio: float = Field(default=0.6, gt=0, le=1)


class GateReport(BaseModel):
    """What the gate measured and what it did; logged, and attached to the rejection."""

    model_config = ConfigDict(frozen=True)

    segments: int
    speech_segments: int
    dropped_segment_ids: list[int]
    speech_chars: int
    speech_s: float
    audio_s: float
    speech_ratio: float | None
    repeated_ngram_ratio: float | None
    loop_segment_ids: list[int] = Field(default_factory=list)
    dominant_share: float | None = None
    low_confidence_share: float = 0.0
    masked: dict[str, int] = Field(default_factory=dict)


class ScreenedTranscript(BaseModel):
    model_config = ConfigDict(frozen=True)

    transcript: Transcript
    report: GateReport


def normalise(text: str) -> str:
    return _NORMALISE_DROP.sub("", unicodedata.normalize("NFKC", text))


def is_hallucination(text: str) -> bool:
    """Whether the whole text is known STT filler (one or more phrases, nothing else)."""
    rest = normalise(text)
    if not rest:
        return False
    while rest:
        for phrase in _PHRASES_LONGEST_FIRST:
            if rest.startswith(phrase):
                rest = rest[len(phrase) :]
                break
        else:
            for pattern in HALLUCINATION_PATTERNS:
                match = pattern.match(rest)
                if match:
                    rest = rest[match.end() :]
                    break
            else:
                return False
    return True


def is_non_speech(text: str) -> bool:
    """Empty, or only tags and symbols such as "[음악]", "(박수)", "♪♪"."""
    return bool(_NON_SPEECH.match(text))


def repeated_ngram_ratio(text: str, n: int = NGRAM_WORDS) -> float | None:
    """Share of word n-grams that repeat an earlier one (None when the text is too short)."""
    words = [normalise(word) for word in text.split()]
    words = [word for word in words if word]
    ngrams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(ngrams) < MIN_NGRAMS_FOR_REPETITION:
        return None
    return 1 - len(Counter(ngrams)) / len(ngrams)


def words_of(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def dominant_share(text: str) -> float | None:
    """The share of the words covered by the most repeated phrase of 1-4 words (seen at
    least ``DOMINANT_MIN_REPEATS`` times); None when no phrase repeats that often."""
    words = words_of(text)
    best: float | None = None
    for n in range(1, DOMINANT_MAX_WORDS + 1):
        counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if not counts:
            break
        repeats = counts.most_common(1)[0][1]
        if repeats >= DOMINANT_MIN_REPEATS:
            share = min(1.0, repeats * n / len(words))
            best = share if best is None else max(best, share)
    return best


def is_dominated(text: str) -> bool:
    share = dominant_share(text)
    return share is not None and share >= DOMINANT_SHARE


def loop_segments(segments: list[TranscriptSegment]) -> set[int]:
    """Indexes (into ``segments``) of loop segments: Whisper's compression-ratio signal,
    a segment dominated by one phrase, and the repeats in a run of identical segments."""
    loops = {
        index
        for index, segment in enumerate(segments)
        if segment.engine_says_loop or is_dominated(segment.text)
    }
    run_start = 0
    keys = [normalise(segment.text) for segment in segments]
    for index in range(1, len(segments) + 1):
        if index < len(segments) and keys[index] == keys[run_start]:
            continue
        if index - run_start >= IDENTICAL_RUN:
            loops.update(range(run_start + 1, index))
        run_start = index
    return loops


def screen_transcript(
    transcript: Transcript,
    *,
    audio_duration_s: float,
    thresholds: GateThresholds,
    mask_pii: bool,
) -> ScreenedTranscript:
    """The transcript a summariser may read, or ``TranscriptRejected`` saying why not."""
    kept: list[TranscriptSegment] = []
    dropped: list[int] = []
    for segment in transcript.segments:
        if is_non_speech(segment.text):
            continue
        if is_hallucination(segment.text):
            dropped.append(segment.id if segment.id is not None else -1)
            continue
        kept.append(segment)
    loops = loop_segments(kept)
    loop_ids = [kept[i].id if kept[i].id is not None else -1 for i in sorted(loops)]
    loop_s = sum(max(0.0, kept[i].end_s - kept[i].start_s) for i in loops)
    kept = [segment for index, segment in enumerate(kept) if index not in loops]
    speech = transcript.model_copy(update={"segments": kept})
    text = speech.text
    speech_chars = len(normalise(text))
    speech_s = sum(max(0.0, segment.end_s - segment.start_s) for segment in kept)
    speech_ratio = min(1.0, speech_s / audio_duration_s) if audio_duration_s > 0 else None
    repetition = repeated_ngram_ratio(text)
    dominance = dominant_share(text)
    report = GateReport(
        segments=len(transcript.segments),
        speech_segments=len(kept),
        dropped_segment_ids=dropped,
        speech_chars=speech_chars,
        speech_s=round(speech_s, 3),
        audio_s=round(audio_duration_s, 3),
        speech_ratio=None if speech_ratio is None else round(speech_ratio, 4),
        repeated_ngram_ratio=None if repetition is None else round(repetition, 4),
        loop_segment_ids=loop_ids,
        dominant_share=None if dominance is None else round(dominance, 4),
        low_confidence_share=speech.low_confidence_share,
    )
    problems = []
    loop_share = loop_s / (loop_s + speech_s) if loop_s + speech_s > 0 else float(bool(loops))
    if loops and loop_share >= MAX_LOOP_SHARE:
        problems.append(
            f"{len(loops)} loop segments cover {loop_share:.0%} of the speech time "
            "(an STT hallucination loop)"
        )
    elif dominance is not None and dominance >= DOMINANT_SHARE:
        problems.append(
            f"one phrase makes up {dominance:.0%} of its words (an STT hallucination loop)"
        )
    elif speech_chars < max(1, thresholds.min_chars):
        what = (
            f"only known STT hallucination phrases ({len(dropped)} segments)"
            if dropped
            else "no speech recognised"
        )
        problem = f"{what}: {speech_chars} characters of speech < {thresholds.min_chars}"
        if transcript.noisy_share >= NOISY_SHARE and not dropped:
            raise SpeechTooNoisy(
                f"speech too noisy to transcribe: {transcript.noisy_share:.0%} of the audio is "
                f"broadband noise and {problem}"
            )
        problems.append(problem)
    elif speech_ratio is not None and speech_ratio < thresholds.min_speech_ratio:
        problems.append(
            f"speech covers {speech_ratio:.1%} of {audio_duration_s:.0f} s of audio "
            f"< {thresholds.min_speech_ratio:.0%}"
        )
    if repetition is not None and repetition > thresholds.max_repeated_ngram_ratio:
        problems.append(
            f"{repetition:.0%} of its {NGRAM_WORDS}-word sequences are repeats "
            f"> {thresholds.max_repeated_ngram_ratio:.0%} (an STT hallucination loop)"
        )
    if problems:
        figures = (
            f"{report.speech_segments}/{report.segments} segments kept, "
            f"{speech_chars} characters, speech ratio {_figure(speech_ratio)}, "
            f"repeated 3-grams {_figure(repetition)}"
        )
        raise TranscriptRejected(
            f"transcript rejected by the quality gate: {'; '.join(problems)} ({figures})"
        )
    if mask_pii:
        speech, counts = mask_transcript(speech)
        report = report.model_copy(update={"masked": dict(counts)})
    return ScreenedTranscript(transcript=speech, report=report)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def screen_for_summary(
    transcript: Transcript, audio_duration_s: float, settings: Settings
) -> ScreenedTranscript:
    """``screen_transcript`` with the thresholds and masking the settings ask for."""
    return screen_transcript(
        transcript,
        audio_duration_s=audio_duration_s,
        thresholds=GateThresholds(
            min_chars=settings.transcript_min_chars,
            min_speech_ratio=settings.transcript_min_speech_ratio,
            max_repeated_ngram_ratio=settings.transcript_max_repeated_ngram_ratio,
        ),
        mask_pii=settings.pii_mask_llm_input,
    )


def transcript_to_store(transcript: Transcript, settings: Settings) -> Transcript:
    """The transcript as the result JSON and the callback carry it (``TRANSCRIPT_STORE_POLICY``)."""
    if settings.transcript_store_policy == "masked":
        return mask_transcript(transcript)[0]
    return transcript

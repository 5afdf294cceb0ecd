"""Data contracts passed between stages and across the pipeline's boundaries."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from video_processor.config import AudioProfile, LlmEngineName, Settings, SttEngineName
from video_processor.errors import ErrorCode

# 1.1: structured summary, segment ids, LLM usage; 1.2: meta.usage; 1.3: segment confidence
# and language, meta.language, meta.gaps, meta.low_confidence(_share), meta.flags
RESULT_SCHEMA_VERSION = "1.3"

# videos/{user_id}/{job_id}.{ext}; ids are word characters or dashes, never separators.
# Matched whole (fullmatch): "$" would also match before a trailing newline.
VIDEO_KEY_PATTERN = re.compile(
    r"videos/(?P<user_id>[\w-]{1,128})/(?P<job_id>[\w-]{1,128})\.(?P<ext>[A-Za-z0-9]{1,8})"
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class S3ObjectRef(Frozen):
    """One created object, as announced by an S3 event (key already decoded)."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_name: str = "ObjectCreated:Put"
    event_time: datetime | None = None

    @field_validator("etag")
    @classmethod
    def _unquoted(cls, etag: str | None) -> str | None:
        """S3 APIs quote eTags, events do not: one form keeps idempotency keys equal."""
        return etag.strip('"') if etag else etag


class JobContext(Frozen):
    """Everything a flow run knows about its video. It is the flow's only parameter."""

    bucket: str
    key: str
    user_id: str
    job_id: str
    extension: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None

    @classmethod
    def from_object(cls, obj: S3ObjectRef) -> JobContext | None:
        """The job for an object whose key follows the video layout, else None."""
        match = VIDEO_KEY_PATTERN.fullmatch(obj.key)
        if match is None:
            return None
        return cls(
            bucket=obj.bucket,
            key=obj.key,
            user_id=match["user_id"],
            job_id=match["job_id"],
            extension=match["ext"].lower(),
            size=obj.size,
            etag=obj.etag,
            version_id=obj.version_id,
        )

    @property
    def version_tag(self) -> str:
        """What tells two uploads of the same key apart: versionId, else eTag."""
        return self.version_id or self.etag or "unversioned"

    @property
    def idempotency_key(self) -> str:
        """One flow run per video version, whoever asks (sensor replica, redelivery)."""
        digest = hashlib.sha256(f"{self.bucket}\0{self.key}\0{self.version_tag}".encode())
        return f"video:{digest.hexdigest()[:40]}"

    @property
    def run_name(self) -> str:
        return f"job-{self.job_id}"

    @property
    def result_key(self) -> str:
        return f"results/{self.user_id}/{self.job_id}.json"

    @property
    def work_prefix(self) -> str:
        """Where intermediate artifacts (audio chunks) of this video version live."""
        version = hashlib.sha256(self.version_tag.encode()).hexdigest()[:16]
        return f"work/{self.user_id}/{self.job_id}/{version}/"


class AudioOptions(Frozen):
    """How the audio stage treats an upload: clean-up profile, chunking and limits.

    ``chunked`` is off for an STT engine that takes the whole upload: the stage then only
    checks the caps and reads the duration."""

    profile: AudioProfile
    chunk_seconds: float
    ffmpeg_timeout_s: float
    max_video_bytes: int
    max_video_duration_s: float
    chunked: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, *, chunked: bool = True) -> AudioOptions:
        return cls(
            profile=settings.audio_profile,
            chunk_seconds=settings.audio_chunk_seconds,
            ffmpeg_timeout_s=settings.ffmpeg_timeout_seconds,
            max_video_bytes=settings.max_video_bytes,
            max_video_duration_s=settings.max_video_duration_seconds,
            chunked=chunked,
        )


class RunPlan(Frozen):
    """What a run decided once at its start and passes to every task: the engines and
    the options they run with. Serialisable, free of secrets (those stay in blocks)."""

    stt_engine: SttEngineName
    stt_language: str
    llm_engine: LlmEngineName
    audio: AudioOptions
    chunk_concurrency: Annotated[int, Field(ge=1)]


class TimeRange(Frozen):
    """A stretch of the video, in seconds from its start."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


class AudioChunk(Frozen):
    """A piece of the extracted audio, stored in S3, that an STT request may carry."""

    index: int
    key: str
    start_s: float
    duration_s: float
    size_bytes: int
    # Where the audio stage's pause scan heard sound (absolute times), and whether that
    # sound is mostly broadband noise (see ``audio.is_broadband_noise``).
    sound: list[TimeRange] = Field(default_factory=list)
    noisy: bool = False


class AudioManifest(Frozen):
    """The audio stage's output: where the chunks are and what the source held."""

    chunks: list[AudioChunk]
    video_duration_s: float
    audio_filter: str
    download_ms: int = 0
    ffmpeg_ms: int = 0

    @property
    def audio_duration_s(self) -> float:
        """The audio the STT engine hears: the chunks, or the whole media when there are
        none (a long-form engine fetches the video itself)."""
        if not self.chunks:
            return self.video_duration_s
        return sum(chunk.duration_s for chunk in self.chunks)


# Under exp(-1): the avg log-prob Whisper itself calls a failed decode (log_prob_threshold).
LOW_CONFIDENCE_BELOW = 0.37
# A job whose speech is at least this share low-confidence is flagged ``low_confidence``.
LOW_CONFIDENCE_JOB_SHARE = 0.5
# Whisper's compression_ratio_threshold: a window whose text gzips this well is a loop.
LOOP_COMPRESSION_RATIO = 2.4


class TranscriptSegment(Frozen):
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None
    # What summaries cite. STT engines leave it unset; the Transcript numbers its segments.
    id: int | None = None
    # 0..1 where the engine says (Whisper: exp(avg log-prob); CLOVA Speech: its own).
    confidence: float | None = None
    # The spoken language the engine heard, when it detects one.
    language: str | None = None
    # Whisper's own loop and silence signals for the decoded window (None for CLOVA).
    compression_ratio: float | None = None
    no_speech_prob: float | None = None

    @property
    def low_confidence(self) -> bool:
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE_BELOW

    @property
    def engine_says_loop(self) -> bool:
        """Whisper's own loop signal (``LOOP_COMPRESSION_RATIO``)."""
        return (self.compression_ratio or 0.0) > LOOP_COMPRESSION_RATIO


class ChunkTranscript(Frozen):
    """One chunk's segments and the stretches of sound in it that stayed without text."""

    segments: list[TranscriptSegment]
    gaps: list[TimeRange] = Field(default_factory=list)
    fallback_decoded: bool = False


class Transcript(Frozen):
    """Segments in time order; each carries a stable id (its index unless already set)."""

    engine: str
    language: str
    segments: list[TranscriptSegment]
    # Stretches with sound but no text, after the fallback decode (see ``stages``).
    gaps: list[TimeRange] = Field(default_factory=list)
    # The share of the audio heard as broadband noise (0 when unmeasured).
    noisy_share: float = 0.0

    @field_validator("segments")
    @classmethod
    def _number_segments(cls, segments: list[TranscriptSegment]) -> list[TranscriptSegment]:
        numbered = [
            segment if segment.id is not None else segment.model_copy(update={"id": index})
            for index, segment in enumerate(segments)
        ]
        ids = [segment.id for segment in numbered]
        if len(set(ids)) != len(ids):
            raise ValueError("transcript segment ids must be unique")
        return numbered

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments if segment.text).strip()

    def segment_by_id(self) -> dict[int, TranscriptSegment]:
        return {segment.id: segment for segment in self.segments if segment.id is not None}

    @property
    def low_confidence_share(self) -> float:
        """Share of the speech time (segments with a confidence) that is low-confidence."""
        rated = [s for s in self.segments if s.confidence is not None and s.text]
        total = sum(max(0.0, s.end_s - s.start_s) for s in rated)
        low = sum(max(0.0, s.end_s - s.start_s) for s in rated if s.low_confidence)
        return round(low / total, 3) if total > 0 else 0.0


class KeyPoint(Frozen):
    """One point of a summary and the transcript segments it comes from."""

    text: str
    segment_ids: list[int] = Field(min_length=1)
    start_s: float = Field(description="Start of the first cited segment: where to jump to.")


class LlmUsage(Frozen):
    """The token ledger of one summary: every call, retries and map-reduce steps included."""

    llm_calls: int = 0
    token_count_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )

    def plus(self, other: LlmUsage) -> LlmUsage:
        return LlmUsage(
            **{name: getattr(self, name) + getattr(other, name) for name in LlmUsage.model_fields}
        )


class Summary(Frozen):
    """The structured summary; ``text`` is its summary paragraph (the DONE callback's)."""

    engine: str
    model: str
    text: str
    title: str = ""
    key_points: list[KeyPoint] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    language: str = ""
    strategy: Literal["single-call", "map-reduce", "extractive"] = "single-call"
    chunks: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    usage: LlmUsage = Field(default_factory=LlmUsage)


class StageTimings(Frozen):
    download_ms: int = 0
    ffmpeg_ms: int = 0
    stt_ms: int = 0
    llm_ms: int = 0


class UsageLedger(Frozen):
    """What a job consumed: the run's ledger artifact shows the same figures."""

    audio_seconds_to_stt: float = 0.0
    stt_requests: int = 0
    llm_calls: int = 0
    llm_input_tokens: int = 0
    llm_output_tokens: int = 0
    llm_cache_read_tokens: int = 0
    llm_cache_write_tokens: int = 0
    task_retries: int = 0


class ResultMeta(Frozen):
    duration_ms: int
    model: str
    stt_engine: str
    video_duration: float
    audio_quality: str
    stages: StageTimings
    usage: UsageLedger = Field(default_factory=UsageLedger)
    language: str = ""
    gaps: list[TimeRange] = Field(default_factory=list)
    low_confidence: bool = False
    low_confidence_share: float = 0.0
    # "gaps", "loops", "low_confidence": a DONE a reader should not take at face value.
    flags: list[str] = Field(default_factory=list)


class ResultDocument(Frozen):
    """The result JSON written to the result bucket."""

    schema_version: str = RESULT_SCHEMA_VERSION
    job_id: str
    user_id: str
    s3_bucket: str
    s3_key: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    transcript: Transcript
    transcript_text: str
    summary: Summary
    meta: ResultMeta


class ResultKeys(Frozen):
    """Where a job's outputs live in the result bucket."""

    result: str
    srt: str
    vtt: str

    @classmethod
    def for_job(cls, job: JobContext) -> ResultKeys:
        stem = job.result_key.removesuffix(".json")
        return cls(result=job.result_key, srt=f"{stem}.srt", vtt=f"{stem}.vtt")


class CallbackMeta(Frozen):
    duration_ms: int
    model: str
    stt_engine: str
    video_duration: float
    audio_quality: str
    srt_s3_key: str | None = None
    vtt_s3_key: str | None = None


class DoneCallback(Frozen):
    status: Literal["DONE"] = "DONE"
    s3_bucket: str
    s3_key: str
    transcript: str
    summary: str
    result_s3_key: str
    meta: CallbackMeta


class FailedCallback(Frozen):
    status: Literal["FAILED"] = "FAILED"
    s3_bucket: str
    s3_key: str
    error_code: ErrorCode
    error_message: str


CallbackBody = Annotated[DoneCallback | FailedCallback, Field(discriminator="status")]

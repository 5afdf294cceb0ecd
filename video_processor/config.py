"""Configuration from the environment and `.env`, validated once at start.

Secrets read here are only used by the block bootstrap (`python -m operations.bootstrap`),
which stores them in Prefect blocks; flow runs load credentials from those blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from video_processor.errors import ConfigurationError

SQS_MAX_WAIT_SECONDS = 20
SQS_MAX_VISIBILITY_SECONDS = 43_200
CLOVA_CSR_MAX_AUDIO_SECONDS = 60
CLOVA_SPEECH_MAX_SYNC_AUDIO_SECONDS = 2 * 3600
# Defaults shared by the settings, the blocks and the clients.
DEFAULT_CLOVA_CSR_URL = "https://naveropenapi.apigw.ntruss.com/recog/v1/stt"
DEFAULT_CLOVA_CSR_TIMEOUT_S = 60.0
DEFAULT_CLAUDE_BASE_URL = "https://api.anthropic.com"
DEFAULT_CLAUDE_MAX_TOKENS = 2000
DEFAULT_CLAUDE_TIMEOUT_S = 120.0
DEFAULT_CALLBACK_TIMEOUT_S = 10.0
# The newest Sonnet of the pinned anthropic SDK's model list that is not in its
# DEPRECATED_MODELS (tests check it against the installed SDK).
DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"


class SttEngineName(StrEnum):
    AUTO = "auto"
    CLOVA_CSR = "clova-csr"
    CLOVA_SPEECH = "clova-speech"
    LOCAL = "local"


class LlmEngineName(StrEnum):
    AUTO = "auto"
    CLAUDE = "claude"
    LOCAL = "local"


class AudioProfile(StrEnum):
    """FFmpeg clean-up chains: band-pass and a denoiser, a high-pass only, or none."""

    DENOISE = "denoise"
    HIGHPASS = "highpass"
    NONE = "none"

    @classmethod
    def _missing_(cls, value: object) -> AudioProfile | None:
        # `seed`, this chain's name in earlier releases, still selects it.
        return cls.DENOISE if value == "seed" else None


class ClovaSpeechOptions(BaseModel):
    """How CLOVA Speech long-form is called: the one home of these options and their
    defaults, which the settings (``CLOVA_SPEECH_*``), the block and the client share."""

    send_url: bool = Field(
        default=True,
        title="Send presigned URLs",
        description="Send a presigned S3 URL (recognizer/url) instead of uploading the file.",
    )
    diarization: bool = Field(
        default=False, title="Diarization", description="Label segments with speakers."
    )
    sync_max_audio_seconds: float = Field(
        default=300.0,
        ge=0,
        le=CLOVA_SPEECH_MAX_SYNC_AUDIO_SECONDS,
        title="Sync up to (s)",
        description="Media up to this length is recognised synchronously; longer: async.",
    )
    poll_interval_seconds: float = Field(
        default=2.0, gt=0, title="Poll interval (s)", description="First async poll delay."
    )
    poll_max_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        title="Max poll interval (s)",
        description="The poll delay grows up to this.",
    )
    deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        title="Deadline (s)",
        description="An async job not done by then is STT_TIMEOUT.",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, title="Timeout (s)", description="Per-request timeout."
    )


class ClovaSpeechSettings(ClovaSpeechOptions, BaseSettings):
    """The CLOVA Speech domain and its options (``CLOVA_SPEECH_*`` variables)."""

    model_config = SettingsConfigDict(
        env_prefix="CLOVA_SPEECH_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    invoke_url: str | None = None
    secret_key: SecretStr | None = None


class BlockNames(BaseSettings):
    """Names of the Prefect blocks flows load (`BLOCK_*` variables)."""

    model_config = SettingsConfigDict(
        env_prefix="BLOCK_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    aws_credentials: str = "video-processor-aws"
    video_bucket: str = "video-bucket"
    result_bucket: str = "result-bucket"
    clova: str = "clova-csr"
    clova_speech: str = "clova-speech"
    claude: str = "claude"
    backend: str = "backend-callback"
    result_storage: str = "prefect-results"


class Settings(BaseSettings):
    """Every environment variable the pipeline reads (see `.env.example`)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", validate_default=True, env_ignore_empty=True
    )

    app_env: Literal["dev", "prod"] = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    aws_region: str = "ap-northeast-2"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_endpoint_url: str | None = Field(
        default=None, description="S3/SQS endpoint override (a local emulator); unset on AWS."
    )
    video_bucket_name: str = "shortform-video-bucket"
    result_bucket_name: str = "shortform-result-bucket"
    video_key_prefix: str = "videos/"

    sqs_queue_url: str | None = None
    sqs_wait_time_seconds: Annotated[int, Field(ge=0, le=SQS_MAX_WAIT_SECONDS)] = 10
    sqs_visibility_timeout_seconds: Annotated[int, Field(ge=0, le=SQS_MAX_VISIBILITY_SECONDS)] = 90
    sqs_max_messages: Annotated[int, Field(ge=1, le=10)] = 10
    sensor_heartbeat_file: Path = Path("/tmp/video-processor-sensor.heartbeat")
    sensor_stall_seconds: Annotated[float, Field(gt=0)] = 120.0
    sensor_metrics_host: str = "0.0.0.0"
    sensor_metrics_port: Annotated[int, Field(ge=0, le=65_535)] = 9108  # 0: no metrics server
    sensor_outcomes_poll_seconds: Annotated[float, Field(gt=0)] = 15.0

    backend_base_url: str = "https://backend.internal.svc.cluster.local"
    backend_internal_token: SecretStr | None = None
    callback_timeout_seconds: Annotated[float, Field(gt=0)] = DEFAULT_CALLBACK_TIMEOUT_S
    callback_signing_secret: SecretStr | None = None

    stt_engine: SttEngineName = SttEngineName.AUTO
    stt_language: str = "ko"
    # The `lang` query of a seed-style URL is dropped: the engine sets it per request.
    clova_stt_url: str = DEFAULT_CLOVA_CSR_URL
    clova_api_key_id: SecretStr | None = None
    clova_api_key: SecretStr | None = None
    clova_timeout_seconds: Annotated[float, Field(gt=0)] = DEFAULT_CLOVA_CSR_TIMEOUT_S
    # CLOVA Speech long-form: one request per video, no chunking.
    clova_speech: ClovaSpeechSettings = Field(default_factory=ClovaSpeechSettings)

    llm_engine: LlmEngineName = LlmEngineName.AUTO
    claude_api_url: str = f"{DEFAULT_CLAUDE_BASE_URL}/v1/messages"
    claude_api_key: SecretStr | None = None
    claude_model: str = DEFAULT_CLAUDE_MODEL
    claude_max_tokens: Annotated[int, Field(ge=1, le=64_000)] = DEFAULT_CLAUDE_MAX_TOKENS
    claude_timeout_seconds: Annotated[float, Field(gt=0)] = DEFAULT_CLAUDE_TIMEOUT_S
    summary_max_chars: Annotated[int, Field(ge=50)] = 800
    # The summary's language, whatever the spoken one (STT_LANGUAGE=auto may detect another).
    summary_language: str = "ko"
    # Summary quality, long transcripts and cost (README "Summaries").
    summary_min_chars: Annotated[int, Field(ge=1)] = 100
    llm_single_call_max_input_tokens: Annotated[int, Field(ge=1000)] = 30_000
    llm_chunk_max_input_tokens: Annotated[int, Field(ge=500)] = 12_000
    llm_job_max_tokens: Annotated[int, Field(ge=1000)] = 300_000
    claude_prompt_caching: bool = True
    transcript_min_chars: Annotated[int, Field(ge=0)] = 10
    transcript_min_speech_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    transcript_max_repeated_ngram_ratio: Annotated[float, Field(gt=0, le=1)] = 0.6
    pii_mask_llm_input: bool = True
    transcript_store_policy: Literal["original", "masked"] = "original"

    # Global concurrency limits (Prefect), shared by every worker: requests in flight.
    clova_csr_concurrency: Annotated[int, Field(ge=1)] = 8
    clova_speech_concurrency: Annotated[int, Field(ge=1)] = 4
    claude_concurrency: Annotated[int, Field(ge=1)] = 4
    local_engine_concurrency: Annotated[int, Field(ge=1)] = 2
    # Provider rate limits (Prefect limits with slot decay); 0 means none is applied.
    clova_csr_requests_per_second: Annotated[float, Field(ge=0)] = 0.0
    claude_requests_per_minute: Annotated[float, Field(ge=0)] = 0.0

    # Intermediate objects (audio chunks under work/, cached stage results) expire after
    # this many days: a failed job leaves nothing behind for good, a retry before resumes.
    work_expiry_days: Annotated[int, Field(ge=1)] = 7
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 5.0

    audio_profile: AudioProfile = AudioProfile.DENOISE
    audio_chunk_seconds: Annotated[float, Field(gt=1, le=CLOVA_CSR_MAX_AUDIO_SECONDS - 5)] = 55.0
    ffmpeg_timeout_seconds: Annotated[float, Field(gt=0)] = 1800.0
    max_video_bytes: Annotated[int, Field(gt=0)] = 2 * 1024**3
    max_video_duration_seconds: Annotated[float, Field(gt=0)] = 3 * 3600.0
    whisper_model_dir: Path | None = None

    job_timeout_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    # Routing by size: uploads up to ROUTE_MAX_WARM_BYTES run on the warm worker's
    # deployment, larger ones (and those of unknown size) on the isolated one (a process
    # or a pod per run). 0 sends every upload to the isolated deployment.
    process_video_deployment: str = "process-video/process-video-warm"
    isolated_video_deployment: str = "process-video/process-video-local"
    route_max_warm_bytes: Annotated[int, Field(ge=0)] = 512 * 1024**2
    # Chunks of one run transcribed at once (the engine's global limit still applies).
    stt_chunk_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    recovery_deployment: str = "recover-crashed-run/recover-crashed-run"
    zombie_after_seconds: Annotated[float, Field(ge=60)] = 90.0
    zombie_start_seconds: Annotated[float, Field(ge=60)] = 600.0
    blocks: BlockNames = Field(default_factory=BlockNames)


def concurrency_limit_name(kind: str, engine: str) -> str:
    """The Prefect global concurrency limit that bounds calls to an engine (`stt-clova-csr`)."""
    return f"{kind}-{engine}"


def concurrency_limits(settings: Settings) -> dict[str, int]:
    """Every engine's global concurrency limit and its size (created by the bootstrap)."""
    return {
        concurrency_limit_name("stt", SttEngineName.CLOVA_CSR): settings.clova_csr_concurrency,
        concurrency_limit_name("stt", SttEngineName.CLOVA_SPEECH): (
            settings.clova_speech_concurrency
        ),
        concurrency_limit_name("stt", SttEngineName.LOCAL): settings.local_engine_concurrency,
        concurrency_limit_name("llm", LlmEngineName.CLAUDE): settings.claude_concurrency,
        concurrency_limit_name("llm", LlmEngineName.LOCAL): settings.local_engine_concurrency,
    }


@dataclass(frozen=True)
class RateLimit:
    """A Prefect global limit with slot decay: a burst of `slots`, refilled at `per_second`."""

    slots: int
    per_second: float


def rate_limit_name(kind: str, engine: str) -> str:
    """The Prefect rate limit on an engine's requests (`rate-llm-claude`)."""
    return f"rate-{concurrency_limit_name(kind, engine)}"


def rate_limits(settings: Settings) -> dict[str, RateLimit]:
    """The configured provider rate limits (created by the bootstrap)."""
    limits: dict[str, RateLimit] = {}
    if settings.clova_csr_requests_per_second:
        per_second = settings.clova_csr_requests_per_second
        limits[rate_limit_name("stt", SttEngineName.CLOVA_CSR)] = RateLimit(
            slots=max(1, math.ceil(per_second)), per_second=per_second
        )
    if settings.claude_requests_per_minute:
        per_minute = settings.claude_requests_per_minute
        limits[rate_limit_name("llm", LlmEngineName.CLAUDE)] = RateLimit(
            slots=max(1, math.ceil(per_minute)), per_second=per_minute / 60
        )
    return limits


_ENV_PREFIXES = {
    group.__name__: str(group.model_config.get("env_prefix", ""))
    for group in (ClovaSpeechSettings, BlockNames)
}


def load_settings() -> Settings:
    """Read and validate the configuration; an invalid value names its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        # A nested group (`CLOVA_SPEECH_*`, `BLOCK_*`) fails on its own, without its prefix.
        prefix = _ENV_PREFIXES.get(exc.title, "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc

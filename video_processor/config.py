"""Configuration from the environment and `.env`, validated once at start.

Secrets read here are only used by the block bootstrap (`python -m blocks.bootstrap`),
which stores them in Prefect blocks; flow runs load credentials from those blocks.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from video_processor.errors import ConfigurationError

SQS_MAX_WAIT_SECONDS = 20
SQS_MAX_VISIBILITY_SECONDS = 43_200
CLOVA_CSR_MAX_AUDIO_SECONDS = 60


class SttEngineName(StrEnum):
    AUTO = "auto"
    CLOVA_CSR = "clova-csr"
    LOCAL = "local"


class LlmEngineName(StrEnum):
    AUTO = "auto"
    CLAUDE = "claude"
    LOCAL = "local"


class AudioProfile(StrEnum):
    """FFmpeg clean-up chains; `seed` is the original design's chain."""

    SEED = "seed"
    HIGHPASS = "highpass"
    NONE = "none"


class BlockNames(BaseSettings):
    """Names of the Prefect blocks flows load (`BLOCK_*` variables)."""

    model_config = SettingsConfigDict(
        env_prefix="BLOCK_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    aws_credentials: str = "video-processor-aws"
    video_bucket: str = "video-bucket"
    result_bucket: str = "result-bucket"
    clova: str = "clova-csr"
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

    backend_base_url: str = "https://backend.internal.svc.cluster.local"
    backend_internal_token: SecretStr | None = None
    callback_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    stt_engine: SttEngineName = SttEngineName.AUTO
    stt_language: str = "ko"
    clova_stt_url: str = "https://naveropenapi.apigw.ntruss.com/recog/v1/stt?lang=Kor"
    clova_api_key_id: SecretStr | None = None
    clova_api_key: SecretStr | None = None
    clova_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0

    llm_engine: LlmEngineName = LlmEngineName.AUTO
    claude_api_url: str = "https://api.anthropic.com/v1/messages"
    claude_api_key: SecretStr | None = None
    claude_model: str = "claude-sonnet-4-6"
    claude_max_tokens: Annotated[int, Field(ge=1, le=64_000)] = 2000
    claude_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0
    summary_max_chars: Annotated[int, Field(ge=50)] = 800

    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 5.0

    audio_profile: AudioProfile = AudioProfile.SEED
    audio_chunk_seconds: Annotated[float, Field(gt=1, le=CLOVA_CSR_MAX_AUDIO_SECONDS - 5)] = 55.0
    ffmpeg_timeout_seconds: Annotated[float, Field(gt=0)] = 1800.0
    max_video_bytes: Annotated[int, Field(gt=0)] = 2 * 1024**3
    max_video_duration_seconds: Annotated[float, Field(gt=0)] = 3 * 3600.0
    whisper_model_dir: Path | None = None

    process_video_deployment: str = "process-video/process-video-local"
    blocks: BlockNames = Field(default_factory=BlockNames)


def load_settings() -> Settings:
    """Read and validate the configuration; an invalid value names its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc

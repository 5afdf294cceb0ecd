"""Create or update every block from the environment: `python -m blocks.bootstrap`.

Idempotent: running it again overwrites the blocks with the current values.
"""

from __future__ import annotations

import sys

from prefect.blocks.core import Block
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from blocks.backend import BackendCallback
from blocks.claude import ClaudeCredentials
from blocks.clova import ClovaCsrCredentials
from video_processor.config import Settings, load_settings
from video_processor.errors import ConfigurationError
from video_processor.logs import configure_json_logging, get_logger

logger = get_logger("bootstrap")
RESULT_STORAGE_FOLDER = "prefect-results"


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


def desired_blocks(settings: Settings) -> dict[str, Block]:
    """Every block the pipeline loads, by name, built from the settings."""
    names = settings.blocks
    credentials = AwsCredentials(
        aws_access_key_id=_secret(settings.aws_access_key_id),
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
        aws_client_parameters=AwsClientParameters(endpoint_url=settings.aws_endpoint_url),
    )
    if settings.backend_internal_token is None:
        raise ConfigurationError("invalid configuration: BACKEND_INTERNAL_TOKEN is not set")
    blocks: dict[str, Block] = {
        names.aws_credentials: credentials,
        names.video_bucket: S3Bucket(
            bucket_name=settings.video_bucket_name, credentials=credentials
        ),
        names.result_bucket: S3Bucket(
            bucket_name=settings.result_bucket_name, credentials=credentials
        ),
        names.result_storage: S3Bucket(
            bucket_name=settings.result_bucket_name,
            bucket_folder=RESULT_STORAGE_FOLDER,
            credentials=credentials,
        ),
        names.backend: BackendCallback(
            base_url=settings.backend_base_url,
            internal_token=settings.backend_internal_token,
            timeout_seconds=settings.callback_timeout_seconds,
        ),
    }
    if settings.clova_api_key_id and settings.clova_api_key:
        blocks[names.clova] = ClovaCsrCredentials(
            url=settings.clova_stt_url.split("?")[0],
            api_key_id=settings.clova_api_key_id,
            api_key=settings.clova_api_key,
            timeout_seconds=settings.clova_timeout_seconds,
        )
    if settings.claude_api_key:
        blocks[names.claude] = ClaudeCredentials(
            api_key=settings.claude_api_key,
            base_url=settings.claude_api_url.removesuffix("/v1/messages"),
            model=settings.claude_model,
            max_tokens=settings.claude_max_tokens,
            timeout_seconds=settings.claude_timeout_seconds,
        )
    return blocks


def bootstrap_blocks(settings: Settings) -> list[str]:
    """Save every block (AWS credentials first: the buckets reference them)."""
    saved = []
    for name, block in desired_blocks(settings).items():
        block.save(name, overwrite=True)
        saved.append(f"{block.get_block_type_slug()}/{name}")
        logger.info("block saved", extra={"stage": "BOOTSTRAP", "block": saved[-1]})
    return saved


def main() -> int:
    try:
        settings = load_settings()
        configure_json_logging(settings.log_level)
        bootstrap_blocks(settings)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

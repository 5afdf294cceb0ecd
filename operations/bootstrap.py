"""Set up Prefect from the environment: `python -m operations.bootstrap`.

Blocks (credentials and endpoints), the expiry of intermediate objects in the result
bucket, the engines' global concurrency limits, and the crash-recovery automations (once
the deployments exist).

Idempotent: running it again overwrites the blocks with the current values.
"""

from __future__ import annotations

import sys
from typing import Any

from prefect.blocks.core import Block
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from blocks.backend import BackendCallback
from blocks.claude import ClaudeCredentials
from blocks.clova import ClovaCsrCredentials
from blocks.clova_speech import ClovaSpeechCredentials
from operations.automations import ensure_automations
from video_processor import s3
from video_processor.config import Settings, concurrency_limits, load_settings, rate_limits
from video_processor.errors import ConfigurationError, StorageError
from video_processor.logs import configure_json_logging, get_logger

logger = get_logger("bootstrap")
RESULT_STORAGE_FOLDER = "prefect-results"
WORK_PREFIX = "work/"
# Lifecycle rule id -> prefix: the audio chunks, and the cached stage results that point at
# them (expiring together, a retry after the expiry starts over instead of missing chunks).
EXPIRY_RULES = {
    "expire-work-audio": WORK_PREFIX,
    "expire-cached-stage-results": f"{RESULT_STORAGE_FOLDER}/",
}


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


def aws_credentials(settings: Settings) -> AwsCredentials:
    return AwsCredentials(
        aws_access_key_id=_secret(settings.aws_access_key_id),
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
        aws_client_parameters=AwsClientParameters(endpoint_url=settings.aws_endpoint_url),
    )


def desired_blocks(settings: Settings) -> dict[str, Block]:
    """Every block the pipeline loads, by name, built from the settings."""
    names = settings.blocks
    credentials = aws_credentials(settings)
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
            signing_secret=settings.callback_signing_secret,
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
    speech = settings.clova_speech
    if speech.invoke_url and speech.secret_key:
        blocks[names.clova_speech] = ClovaSpeechCredentials(**speech.model_dump())
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


def ensure_work_expiry(client: Any, settings: Settings) -> None:
    """Lifecycle rules on the result bucket: intermediate objects expire, results stay."""
    s3.ensure_expiry_rules(
        client, settings.result_bucket_name, EXPIRY_RULES, settings.work_expiry_days
    )
    logger.info(
        "lifecycle rules",
        extra={
            "stage": "BOOTSTRAP",
            "bucket": settings.result_bucket_name,
            "prefixes": sorted(EXPIRY_RULES.values()),
            "days": settings.work_expiry_days,
        },
    )


def ensure_concurrency_limits(client: SyncPrefectClient, settings: Settings) -> None:
    """Create or resize every engine's global concurrency limit and configured rate limit."""
    for name, limit in concurrency_limits(settings).items():
        client.upsert_global_concurrency_limit_by_name(name, limit)
        logger.info(
            "concurrency limit", extra={"stage": "BOOTSTRAP", "limit": name, "slots": limit}
        )
    for name, rate in rate_limits(settings).items():
        client.upsert_global_concurrency_limit_by_name(name, rate.slots, rate.per_second)
        logger.info(
            "rate limit",
            extra={
                "stage": "BOOTSTRAP",
                "limit": name,
                "slots": rate.slots,
                "per_second": rate.per_second,
            },
        )


def bootstrap_automations(client: SyncPrefectClient, settings: Settings) -> None:
    """The crash-recovery automations; they need the deployments (`prefect deploy`) first."""
    try:
        names = ensure_automations(
            client,
            [settings.process_video_deployment, settings.isolated_video_deployment],
            settings.recovery_deployment,
            settings.zombie_after_seconds,
            settings.zombie_start_seconds,
        )
    except ObjectNotFound:
        logger.warning(
            "deployments not found: run `prefect deploy --all`, then this command again",
            extra={"stage": "BOOTSTRAP"},
        )
        return
    for name in names:
        logger.info("automation saved", extra={"stage": "BOOTSTRAP", "automation": name})


def main() -> int:
    """Blocks, global concurrency limits and automations, from the environment."""
    try:
        settings = load_settings()
        configure_json_logging(settings.log_level)
        bootstrap_blocks(settings)
        ensure_work_expiry(aws_credentials(settings).get_s3_client(), settings)
    except (ConfigurationError, StorageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    with get_client(sync_client=True) as client:
        ensure_concurrency_limits(client, settings)
        bootstrap_automations(client, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

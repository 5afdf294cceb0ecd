"""S3 access: streaming downloads, uploads and JSON documents, with errors mapped once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from video_processor.errors import DownloadError, PipelineError, StorageError

_PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 411, 412, 416})
_MISSING_CODES = frozenset({"NoSuchKey", "404"})
# Bounded buffers: boto3's defaults (10 part threads, a deep write queue) let a large
# download hold hundreds of MB when the disk lags the network; this keeps memory flat.
_DOWNLOAD_CONFIG = TransferConfig(max_concurrency=4, max_io_queue=16)


def _status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _mapped(
    exc: ClientError | BotoCoreError, error_type: type[PipelineError], action: str
) -> PipelineError:
    """Translate a botocore error; permanent client errors are not retryable."""
    if isinstance(exc, ClientError):
        status = _status_of(exc)
        code = exc.response.get("Error", {}).get("Code", "?")
        return error_type(
            f"{action}: HTTP {status} {code}", retryable=status not in _PERMANENT_STATUSES
        )
    return error_type(f"{action}: {type(exc).__name__}: {exc}", retryable=True)


def object_size(client: Any, bucket: str, key: str) -> int:
    """The object's size in bytes, from a HEAD request."""
    try:
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, DownloadError, f"head s3://{bucket}/{key}") from exc


def presigned_get_url(client: Any, bucket: str, key: str, expires_s: int) -> str:
    """A time-limited GET URL a third party can fetch the object with."""
    return str(
        client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
    )


def put_text(client: Any, bucket: str, key: str, text: str, content_type: str) -> None:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"write s3://{bucket}/{key}") from exc


def download_file(client: Any, bucket: str, key: str, destination: Path) -> int:
    """Stream an object to a local file (never whole in memory); returns its size."""
    try:
        client.download_file(bucket, key, str(destination), Config=_DOWNLOAD_CONFIG)
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, DownloadError, f"download s3://{bucket}/{key}") from exc
    return destination.stat().st_size


def upload_file(client: Any, source: Path, bucket: str, key: str, content_type: str) -> None:
    try:
        client.upload_file(str(source), bucket, key, ExtraArgs={"ContentType": content_type})
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"upload s3://{bucket}/{key}") from exc


def put_json(client: Any, bucket: str, key: str, document: BaseModel) -> None:
    """Write a model as UTF-8 JSON (the same key on every retry, so writes are idempotent)."""
    body = document.model_dump_json(indent=2).encode()
    try:
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json; charset=utf-8"
        )
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"write s3://{bucket}/{key}") from exc


def read_json(client: Any, bucket: str, key: str) -> Any | None:
    """A JSON document, or None when there is no such object."""
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        return json.loads(response["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
            return None
        raise _mapped(exc, StorageError, f"read s3://{bucket}/{key}") from exc
    except BotoCoreError as exc:
        raise _mapped(exc, StorageError, f"read s3://{bucket}/{key}") from exc


def delete_prefix(client: Any, bucket: str, prefix: str) -> int:
    """Delete every object under a prefix; returns how many were deleted."""
    deleted = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"delete s3://{bucket}/{prefix}*") from exc
    return deleted


def ensure_expiry_rules(client: Any, bucket: str, prefixes: dict[str, str], days: int) -> None:
    """Lifecycle rules (by id) expiring objects under each prefix after ``days``.

    The bucket's other rules are kept: S3 replaces the whole configuration on every put.
    """
    try:
        current = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise _mapped(exc, StorageError, f"read the lifecycle rules of {bucket}") from exc
        current = []
    ours = [
        {
            "ID": rule_id,
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
        }
        for rule_id, prefix in prefixes.items()
    ]
    kept = [rule for rule in current if rule.get("ID") not in prefixes]
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": kept + ours}
        )
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"set the lifecycle rules of {bucket}") from exc

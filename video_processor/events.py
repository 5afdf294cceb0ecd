"""Parsing SQS message bodies that announce S3 objects.

Accepted shapes: S3 event notifications (`Records`, possibly several),
the same wrapped in an SNS envelope, EventBridge "Object Created" events, and the
`s3:TestEvent` sent when notifications are configured.

Records are validated one by one: a malformed record among valid ones is returned in
``ParsedMessage.rejected`` (with why) and does not cost the others their runs; a message
with no valid record at all raises ``MessageParseError``.

Keys are URL-encoded form style (``unquote_plus``) in S3 notifications, as AWS documents.
For EventBridge, AWS's documentation neither shows an encoded key nor says the key is
raw, while AWS Lambda Powertools and LocalStack decode it: it is decoded the same way.
Neither reading loses an upload: the two differ only for keys with ``+`` or ``%``, which
the video layout never accepts undecoded; a decoded key that names no object fails its
job loudly (``S3_DOWNLOAD_FAILED``), it is never skipped in silence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from video_processor.models import S3ObjectRef

SUPPORTED_EVENT_MAJOR_VERSION = "2"
CREATED_EVENT_PREFIX = "ObjectCreated:"


class MessageParseError(ValueError):
    """The body is not an event we understand; the message belongs in the dead-letter queue."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _S3Bucket(_Lenient):
    name: str


class _S3Object(_Lenient):
    key: str
    size: int | None = None
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")


class _S3Entity(_Lenient):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(_Lenient):
    event_version: str = Field(alias="eventVersion")
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_time: datetime | None = Field(default=None, alias="eventTime")
    s3: _S3Entity


class _S3Notification(_Lenient):
    records: list[Any] = Field(alias="Records")


class _EventBridgeObject(_Lenient):
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")


class _EventBridgeDetail(_Lenient):
    bucket: _S3Bucket
    object: _EventBridgeObject


class _EventBridgeEvent(_Lenient):
    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime | None = None
    detail: _EventBridgeDetail


@dataclass(frozen=True)
class RejectedRecord:
    """A record that does not parse: why, and the record itself (kept for inspection)."""

    reason: str
    record: Any


@dataclass(frozen=True)
class ParsedMessage:
    """What a message announces: created objects, records skipped on purpose (with why),
    and malformed records next to valid ones."""

    objects: list[S3ObjectRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    is_test_event: bool = False


def parse_message_body(body: str) -> ParsedMessage:
    """Parse an SQS body; raises MessageParseError when no known shape fits."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MessageParseError(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MessageParseError(f"body is JSON {type(document).__name__}, not an object")
    return _parse_document(document)


def _parse_document(document: dict[str, Any]) -> ParsedMessage:
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage(is_test_event=True)
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return parse_message_body(document["Message"])
    if "Records" in document:
        return _parse_notification(document)
    if document.get("source") == "aws.s3" and "detail" in document:
        return _parse_eventbridge(document)
    raise MessageParseError(f"unknown message shape with keys {sorted(document)[:10]}")


def _parse_notification(document: dict[str, Any]) -> ParsedMessage:
    try:
        notification = _S3Notification.model_validate(document)
    except ValidationError as exc:
        raise MessageParseError(f"malformed S3 notification: {_first_error(exc)}") from exc
    parsed = ParsedMessage()
    for index, raw in enumerate(notification.records):
        try:
            record = _S3Record.model_validate(raw)
        except ValidationError as exc:
            reason = f"record {index}: malformed S3 record: {_first_error(exc)}"
            parsed.rejected.append(RejectedRecord(reason, raw))
            continue
        where = f"{record.event_name} s3://{record.s3.bucket.name}/{record.s3.object.key}"
        if record.event_source != "aws:s3":
            parsed.skipped.append(f"{where}: event source {record.event_source!r}")
        elif record.event_version.split(".")[0] != SUPPORTED_EVENT_MAJOR_VERSION:
            parsed.skipped.append(f"{where}: unsupported eventVersion {record.event_version}")
        elif not record.event_name.startswith(CREATED_EVENT_PREFIX):
            parsed.skipped.append(f"{where}: not an object creation")
        else:
            parsed.objects.append(
                S3ObjectRef(
                    bucket=record.s3.bucket.name,
                    key=unquote_plus(record.s3.object.key),
                    size=record.s3.object.size,
                    etag=record.s3.object.etag,
                    version_id=record.s3.object.version_id,
                    event_name=record.event_name,
                    event_time=record.event_time,
                )
            )
    if parsed.rejected and not (parsed.objects or parsed.skipped):
        raise MessageParseError("malformed S3 notification: " + _reasons(parsed.rejected))
    return parsed


def _parse_eventbridge(document: dict[str, Any]) -> ParsedMessage:
    try:
        event = _EventBridgeEvent.model_validate(document)
    except ValidationError as exc:
        raise MessageParseError(f"malformed EventBridge event: {_first_error(exc)}") from exc
    where = f"{event.detail_type} s3://{event.detail.bucket.name}/{event.detail.object.key}"
    if event.detail_type != "Object Created":
        return ParsedMessage(skipped=[f"{where}: not an object creation"])
    obj = S3ObjectRef(
        bucket=event.detail.bucket.name,
        key=unquote_plus(event.detail.object.key),
        size=event.detail.object.size,
        etag=event.detail.object.etag,
        version_id=event.detail.object.version_id,
        event_name="ObjectCreated:EventBridge",
        event_time=event.time,
    )
    return ParsedMessage(objects=[obj])


def _reasons(rejected: list[RejectedRecord]) -> str:
    return "; ".join(item.reason for item in rejected)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"

"""The callback outbox: a job's final callback is recorded in S3 before it is sent.

The record sits next to the result (`results/{user_id}/{job_id}.callback.json`) and
carries a delivery id that is stable for the job version and status, so a re-send after
a crash or a long backend outage is the same delivery, not a new one, and no job has to
run again. `pending()` finds the records not yet delivered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from video_processor import s3
from video_processor.callback import BackendClient
from video_processor.models import CallbackBody, JobContext

CALLBACK_SUFFIX = ".callback.json"


class CallbackDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    job_id: str
    user_id: str
    body: CallbackBody
    recorded_at: datetime
    delivered_at: datetime | None = None

    @property
    def key(self) -> str:
        return callback_key(self.user_id, self.job_id)


def callback_key(user_id: str, job_id: str) -> str:
    return f"results/{user_id}/{job_id}{CALLBACK_SUFFIX}"


def delivery_id(job: JobContext, status: str) -> str:
    digest = hashlib.sha256(f"{job.idempotency_key}\0{status}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


def read(client: Any, bucket: str, key: str) -> CallbackDelivery | None:
    document = s3.read_json(client, bucket, key)
    return None if document is None else CallbackDelivery.model_validate(document)


def record(client: Any, bucket: str, job: JobContext, body: CallbackBody) -> CallbackDelivery:
    """Record the callback to send; a delivered DONE is final and is returned unchanged."""
    existing = read(client, bucket, callback_key(job.user_id, job.job_id))
    if existing and existing.delivered_at and existing.body.status == "DONE":
        return existing
    new_id = delivery_id(job, body.status)
    if existing and existing.delivery_id == new_id and existing.body == body:
        return existing
    delivery = CallbackDelivery(
        delivery_id=new_id,
        job_id=job.job_id,
        user_id=job.user_id,
        body=body,
        recorded_at=datetime.now(UTC),
    )
    s3.put_json(client, bucket, delivery.key, delivery)
    return delivery


def deliver(client: Any, bucket: str, backend: BackendClient, delivery: CallbackDelivery) -> int:
    """Send a recorded callback and mark it delivered; returns the backend's status."""
    status = backend.complete_job(delivery.job_id, delivery.body, delivery.delivery_id)
    delivered = delivery.model_copy(update={"delivered_at": datetime.now(UTC)})
    s3.put_json(client, bucket, delivery.key, delivered)
    return status


def pending(client: Any, bucket: str, prefix: str = "results/") -> Iterator[CallbackDelivery]:
    """Every recorded callback under the prefix that was never delivered."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(CALLBACK_SUFFIX):
                delivery = read(client, bucket, item["Key"])
                if delivery and delivery.delivered_at is None:
                    yield delivery

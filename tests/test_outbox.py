"""The callback outbox over real S3 (moto server) and the reference backend."""

import hashlib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from local_stack.http_fake import FakeHTTPServer, Fault
from local_stack.reference_backend import BackendConfig, ReferenceBackend, start_reference_backend
from video_processor import outbox
from video_processor.callback import BackendClient
from video_processor.errors import CallbackError, ErrorCode
from video_processor.models import CallbackMeta, DoneCallback, FailedCallback, JobContext

TOKEN = "token"


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeHTTPServer[ReferenceBackend]]:
    with start_reference_backend(BackendConfig(token=TOKEN)) as server:
        yield server


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"results-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    return name


def new_job() -> JobContext:
    job_id = uuid.uuid4().hex[:10]
    return JobContext(
        bucket="videos",
        key=f"videos/u/{job_id}.mp4",
        user_id="u",
        job_id=job_id,
        extension="mp4",
        etag="e1",
    )


def done(job: JobContext) -> DoneCallback:
    return DoneCallback(
        s3_bucket=job.bucket,
        s3_key=job.key,
        transcript="t",
        summary="s",
        result_s3_key=job.result_key,
        meta=CallbackMeta(
            duration_ms=1, model="m", stt_engine="local", video_duration=1.0, audio_quality="none"
        ),
    )


def failed(job: JobContext) -> FailedCallback:
    return FailedCallback(
        s3_bucket=job.bucket, s3_key=job.key, error_code=ErrorCode.LLM_TIMEOUT, error_message="slow"
    )


def test_a_recorded_callback_is_pending_until_delivered(s3_client, bucket, backend):
    job = new_job()
    delivery = outbox.record(s3_client, bucket, job, done(job))
    assert [d.delivery_id for d in outbox.pending(s3_client, bucket)] == [delivery.delivery_id]

    client = BackendClient(base_url=backend.url, internal_token=TOKEN)
    assert outbox.deliver(s3_client, bucket, client, delivery) == 200

    assert list(outbox.pending(s3_client, bucket)) == []
    stored = outbox.read(s3_client, bucket, outbox.callback_key(job.user_id, job.job_id))
    assert stored is not None and stored.delivered_at is not None
    received = httpx.get(f"{backend.url}/internal/jobs/{job.job_id}").json()["callbacks"]
    assert received[0]["headers"]["X-Delivery-Id"] == delivery.delivery_id


def test_backend_outage_leaves_it_pending_and_a_resend_keeps_the_delivery_id(
    s3_client, bucket, backend
):
    job = new_job()
    delivery = outbox.record(s3_client, bucket, job, failed(job))
    backend.service.faults.extend([Fault(status=503)])
    client = BackendClient(base_url=backend.url, internal_token=TOKEN)
    with pytest.raises(CallbackError):
        outbox.deliver(s3_client, bucket, client, delivery)
    [pending] = outbox.pending(s3_client, bucket)
    assert pending.delivery_id == delivery.delivery_id
    assert outbox.deliver(s3_client, bucket, client, pending) == 200
    assert list(outbox.pending(s3_client, bucket)) == []


def test_a_delivered_done_is_final(s3_client, bucket, backend):
    job = new_job()
    client = BackendClient(base_url=backend.url, internal_token=TOKEN)
    outbox.deliver(s3_client, bucket, client, outbox.record(s3_client, bucket, job, done(job)))
    again = outbox.record(s3_client, bucket, job, failed(job))
    assert again.body.status == "DONE" and again.delivered_at is not None


def test_delivery_ids_are_stable_per_job_version_and_status():
    job = new_job()
    assert outbox.delivery_id(job, "DONE") == outbox.delivery_id(job, "DONE")
    assert outbox.delivery_id(job, "DONE") != outbox.delivery_id(job, "FAILED")
    other_version = job.model_copy(update={"etag": "e2"})
    assert outbox.delivery_id(job, "DONE") != outbox.delivery_id(other_version, "DONE")


def test_recording_the_same_callback_twice_keeps_the_first_record(s3_client, bucket):
    job = new_job()
    first = outbox.record(s3_client, bucket, job, failed(job))
    again = outbox.record(s3_client, bucket, job, failed(job))
    assert again == first
    stored = outbox.read(s3_client, bucket, first.key)
    assert stored is not None and stored.recorded_at == first.recorded_at


def test_a_new_outcome_replaces_an_undelivered_record(s3_client, bucket, backend):
    job = new_job()
    failure = outbox.record(s3_client, bucket, job, failed(job))
    success = outbox.record(s3_client, bucket, job, done(job))
    assert success.delivery_id != failure.delivery_id
    assert [d.body.status for d in outbox.pending(s3_client, bucket)] == ["DONE"]
    client = BackendClient(base_url=backend.url, internal_token=TOKEN)
    outbox.deliver(s3_client, bucket, client, outbox.record(s3_client, bucket, job, failed(job)))
    # A delivered FAILED is not final: a later DONE of the same version is recorded.
    assert outbox.record(s3_client, bucket, job, done(job)).delivered_at is None


def test_records_sit_next_to_the_result_and_only_they_are_pending(s3_client, bucket):
    job = new_job()
    delivery = outbox.record(s3_client, bucket, job, done(job))
    assert delivery.key == f"results/u/{job.job_id}.callback.json"
    assert outbox.callback_key("u", "j") == "results/u/j.callback.json"
    s3_client.put_object(Bucket=bucket, Key=f"results/u/{job.job_id}.json", Body=b"{}")
    assert [d.key for d in outbox.pending(s3_client, bucket)] == [delivery.key]
    assert list(outbox.pending(s3_client, bucket, prefix="results/other/")) == []
    assert outbox.read(s3_client, bucket, "results/u/missing.callback.json") is None


def test_a_delivery_id_is_derived_from_the_idempotency_key_and_status():
    job = new_job()
    digest = hashlib.sha256(f"{job.idempotency_key}\0DONE".encode()).hexdigest()
    assert outbox.delivery_id(job, "DONE") == f"dlv_{digest[:32]}"


def test_a_record_with_unknown_fields_is_refused(s3_client, bucket):
    job = new_job()
    delivery = outbox.record(s3_client, bucket, job, done(job))
    document = {**delivery.model_dump(mode="json"), "attempts": 3}
    with pytest.raises(ValidationError):
        outbox.CallbackDelivery.model_validate(document)

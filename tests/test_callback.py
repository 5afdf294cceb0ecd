"""The backend callback client against the reference backend."""

from collections.abc import Iterator

import httpx
import pytest

from local_stack.http_fake import FakeHTTPServer, Fault
from local_stack.reference_backend import BackendConfig, ReferenceBackend, start_reference_backend
from video_processor.callback import BackendClient
from video_processor.errors import CallbackError, ErrorCode
from video_processor.models import CallbackMeta, DoneCallback, FailedCallback

TOKEN = "internal-token"
DONE = DoneCallback(
    s3_bucket="b",
    s3_key="videos/u/j.mp4",
    transcript="안녕",
    summary="요약",
    result_s3_key="results/u/j.json",
    meta=CallbackMeta(
        duration_ms=10, model="m", stt_engine="local", video_duration=3.0, audio_quality="none"
    ),
)
FAILED = FailedCallback(
    s3_bucket="b",
    s3_key="videos/u/j.mp4",
    error_code=ErrorCode.FFMPEG_FAILED,
    error_message="no audio",
)


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeHTTPServer[ReferenceBackend]]:
    with start_reference_backend(BackendConfig(token=TOKEN)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(backend: FakeHTTPServer[ReferenceBackend]) -> None:
    backend.service.faults.clear()


def client(backend, token: str = TOKEN, signing_secret: str | None = None) -> BackendClient:
    return BackendClient(
        base_url=backend.url, internal_token=token, signing_secret=signing_secret, timeout_s=1
    )


def test_done_body_arrives_as_sent_with_the_token(backend):
    assert client(backend).complete_job("job-1", DONE, "dlv-1") == 200
    job = httpx.get(f"{backend.url}/internal/jobs/job-1").json()
    assert job["state"] == "DONE"
    assert job["final"] == DONE.model_dump(mode="json")


def test_first_done_is_kept(backend):
    client(backend).complete_job("job-2", DONE, "dlv-2a")
    client(backend).complete_job("job-2", FAILED, "dlv-2b")
    job = httpx.get(f"{backend.url}/internal/jobs/job-2").json()
    assert job["state"] == "DONE" and len(job["callbacks"]) == 2


@pytest.mark.parametrize(
    ("fault", "retryable"),
    [
        (Fault(status=500), True),
        (Fault(status=503), True),
        (Fault(status=408), True),
        (Fault(status=409), True),
        (Fault(status=425), True),
        (Fault(status=429), True),
        (Fault(status=400), False),
        (Fault(status=404), False),
        (Fault(status=413), False),
        (Fault(kind="timeout", seconds=3), True),
    ],
    ids=["500", "503", "408", "409", "425", "429", "400", "404", "413", "timeout"],
)
def test_failures_are_callback_failed_and_retried_by_the_shared_rule(backend, fault, retryable):
    backend.service.faults.extend([fault])
    with pytest.raises(CallbackError) as caught:
        client(backend).complete_job("job-3", FAILED, "dlv-3")
    assert caught.value.code == "CALLBACK_FAILED"
    assert caught.value.retryable is retryable


def test_wrong_token_is_refused_and_not_retried(backend):
    with pytest.raises(CallbackError, match="401") as caught:
        client(backend, token="wrong").complete_job("job-4", DONE, "dlv-4")
    assert not caught.value.retryable


def test_unreachable_backend_is_retryable():
    with pytest.raises(CallbackError, match="unreachable") as caught:
        BackendClient(base_url="http://127.0.0.1:9", internal_token="t").complete_job(
            "j", DONE, "dlv-5"
        )
    assert caught.value.retryable


def test_repeated_delivery_id_changes_nothing(backend):
    client(backend).complete_job("job-6", FAILED, "dlv-6")
    client(backend).complete_job("job-6", FAILED, "dlv-6")
    job = httpx.get(f"{backend.url}/internal/jobs/job-6").json()
    assert [c["duplicate_delivery"] for c in job["callbacks"]] == [False, True]
    assert job["callbacks"][0]["headers"]["X-Delivery-Id"] == "dlv-6"


@pytest.fixture
def signing_backend() -> Iterator[FakeHTTPServer[ReferenceBackend]]:
    with start_reference_backend(BackendConfig(token=TOKEN, signing_secret="s3cr3t")) as server:
        yield server


def test_signed_callbacks_are_verified_by_the_reference_backend(signing_backend):
    assert client(signing_backend, signing_secret="s3cr3t").complete_job("j7", DONE, "d7") == 200
    with pytest.raises(CallbackError, match="401"):
        client(signing_backend, signing_secret="wrong").complete_job("j8", DONE, "d8")
    with pytest.raises(CallbackError, match="401"):
        client(signing_backend).complete_job("j9", DONE, "d9")

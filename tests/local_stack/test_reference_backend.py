"""The reference backend validates callbacks, records them all and keeps one final state."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_stack.http_fake import FakeHTTPServer
from local_stack.reference_backend import (
    DEFAULT_TOKEN,
    BackendConfig,
    ReferenceBackend,
    next_state,
    start_reference_backend,
)
from tests.local_stack.conftest import CliRunner

HEADERS = {"X-Internal-Token": DEFAULT_TOKEN}
DONE: dict[str, Any] = {
    "status": "DONE",
    "s3_bucket": "shortform-video-bucket",
    "s3_key": "videos/123/987654321.mp4",
    "transcript": "안녕하세요 테스트 음성입니다",
    "summary": "요약: 안녕하세요",
    "result_s3_key": "results/123/987654321.json",
    "meta": {
        "duration_ms": 1200,
        "model": "claude-sonnet-4-6",
        "stt_engine": "clova",
        "video_duration": 12.5,
        "audio_quality": "good",
    },
}
FAILED: dict[str, Any] = {
    "status": "FAILED",
    "s3_bucket": "shortform-video-bucket",
    "s3_key": "videos/123/987654321.mp4",
    "error_code": "STT_TIMEOUT",
    "error_message": "CLOVA did not answer in 30 s",
}


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeHTTPServer[ReferenceBackend]]:
    with start_reference_backend() as server:
        yield server


@pytest.fixture(scope="module")
def shared_client(backend: FakeHTTPServer[ReferenceBackend]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.url, timeout=10) as client:
        yield client


@pytest.fixture
def client(shared_client: httpx.Client) -> httpx.Client:
    """The module's client, talking to a backend just reset to its start state."""
    shared_client.post("/__admin/reset").raise_for_status()
    return shared_client


def _complete(
    client: httpx.Client, body: object, job_id: str = "987654321", **headers: str
) -> httpx.Response:
    return client.post(
        f"/internal/jobs/{job_id}/complete", json=body, headers={**HEADERS, **headers}
    )


def _job(client: httpx.Client, job_id: str = "987654321") -> dict[str, Any]:
    response = client.get(f"/internal/jobs/{job_id}")
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def test_done_callback_is_recorded(client: httpx.Client) -> None:
    response = _complete(client, DONE)
    assert response.status_code == 200
    assert response.json() == {"job_id": "987654321", "state": "DONE", "accepted": True}
    job = _job(client)
    assert (job["job_id"], job["state"], job["final"]) == ("987654321", "DONE", DONE)
    [callback] = job["callbacks"]
    assert callback["body"] == DONE
    assert callback["accepted"] is True
    assert re.match(r"\d{4}-\d\d-\d\dT", callback["received_at"])
    headers = {name.lower(): value for name, value in callback["headers"].items()}
    assert "x-internal-token" not in headers
    assert headers["content-type"] == "application/json"
    assert job["rejected"] == []


def test_failed_callback_is_recorded(client: httpx.Client) -> None:
    assert _complete(client, FAILED).json() == {
        "job_id": "987654321",
        "state": "FAILED",
        "accepted": True,
    }
    assert _job(client)["final"] == FAILED


@pytest.mark.parametrize(
    ("sequence", "final_index", "accepted"),
    [
        ([DONE, FAILED], 0, [True, False]),
        ([DONE, {**DONE, "summary": "두 번째"}], 0, [True, False]),
        ([FAILED, DONE], 1, [True, True]),
        ([FAILED, {**FAILED, "error_code": "LLM_TIMEOUT"}], 0, [True, False]),
        ([FAILED, DONE, FAILED, {**DONE, "summary": "세 번째"}], 1, [True, True, False, False]),
    ],
)
def test_final_state_rule(
    client: httpx.Client,
    sequence: list[dict[str, Any]],
    final_index: int,
    accepted: list[bool],
) -> None:
    answers = [_complete(client, body).json() for body in sequence]
    assert [answer["accepted"] for answer in answers] == accepted
    job = _job(client)
    assert job["final"] == sequence[final_index]
    assert job["state"] == sequence[final_index]["status"]
    assert answers[-1]["state"] == job["state"]
    assert [c["body"] for c in job["callbacks"]] == sequence
    assert [c["accepted"] for c in job["callbacks"]] == accepted


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (None, "DONE", "DONE"),
        (None, "FAILED", "FAILED"),
        ("FAILED", "DONE", "DONE"),
        ("FAILED", "FAILED", None),
        ("DONE", "DONE", None),
        ("DONE", "FAILED", None),
    ],
)
def test_next_state(current: Any, incoming: Any, expected: str | None) -> None:
    assert next_state(current, incoming) == expected


@pytest.mark.parametrize("headers", [{"X-Internal-Token": "wrong"}, {"X-Internal-Token": ""}])
def test_refuses_a_wrong_token(client: httpx.Client, headers: dict[str, str]) -> None:
    response = _complete(client, DONE, **headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid token"}
    job = _job(client)
    assert (job["state"], job["final"], job["callbacks"]) == (None, None, [])
    [rejected] = job["rejected"]
    assert (rejected["status"], rejected["body"]) == (401, DONE)
    assert "x-internal-token" not in {name.lower() for name in rejected["headers"]}


def test_refuses_a_missing_token(client: httpx.Client) -> None:
    response = client.post("/internal/jobs/987654321/complete", json=DONE)
    assert response.status_code == 401
    assert _job(client)["state"] is None


def test_refuses_a_body_that_is_not_declared_json(client: httpx.Client) -> None:
    response = client.post(
        "/internal/jobs/987654321/complete",
        content=b"status=DONE",
        headers={**HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert _job(client)["rejected"][0]["body"] == "status=DONE"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({k: v for k, v in DONE.items() if k != "summary"}, "summary"),
        ({**DONE, "meta": {**DONE["meta"], "duration_ms": "fast"}}, "duration_ms"),
        ({**DONE, "job_id": "987654321"}, "job_id"),
        ({**FAILED, "error_code": "SOMETHING_ELSE"}, "error_code"),
        ({k: v for k, v in FAILED.items() if k != "error_message"}, "error_message"),
        ({**DONE, "status": "SUCCESS"}, "status"),
        ({k: v for k, v in DONE.items() if k != "status"}, "status"),
        (["DONE"], ""),
    ],
)
def test_refuses_invalid_bodies(client: httpx.Client, body: object, fragment: str) -> None:
    response = _complete(client, body)
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    job = _job(client)
    assert (job["state"], job["callbacks"]) == (None, [])
    assert job["rejected"][0]["status"] == 400


def test_refuses_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post(
        "/internal/jobs/987654321/complete",
        content=b"{not json",
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert _job(client)["rejected"][0]["body"] == "{not json"


def test_job_listing_and_unknown_jobs(client: httpx.Client) -> None:
    assert client.get("/internal/jobs/never-seen").status_code == 404
    assert client.get("/internal/jobs").json() == []
    _complete(client, DONE, job_id="a")
    _complete(client, FAILED, job_id="b")
    jobs = client.get("/internal/jobs").json()
    assert [(job["job_id"], job["state"]) for job in jobs] == [("a", "DONE"), ("b", "FAILED")]
    assert client.get("/internal/jobs/a/other").status_code == 404
    stats = client.get("/__admin/stats").json()
    assert (stats["jobs"], stats["callbacks"], stats["done"], stats["failed"]) == (2, 2, 1, 1)


def test_status_faults_are_rejected_without_changing_state(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"status": 500, "count": 2}]})
    statuses = [_complete(client, DONE).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    job = _job(client)
    assert job["state"] == "DONE"
    assert len(job["callbacks"]) == 1
    assert [r["status"] for r in job["rejected"]] == [500, 500]
    assert all(r["body"] == DONE for r in job["rejected"])
    stats = client.get("/__admin/stats").json()
    assert (stats["rejected"], stats["faults_applied"]) == (2, 2)


def test_fault_before_the_first_callback_leaves_no_state(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"status": 503, "body": {"detail": "down"}}]})
    response = _complete(client, FAILED)
    assert (response.status_code, response.json()) == (503, {"detail": "down"})
    assert _job(client)["state"] is None


def test_malformed_fault_changes_nothing(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "malformed"}]})
    response = _complete(client, DONE)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    job = _job(client)
    assert (job["state"], len(job["rejected"])) == (None, 1)


def test_timeout_fault_still_records_the_late_callback(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "timeout", "seconds": 0.3}]})
    with pytest.raises(httpx.ReadTimeout):
        client.post("/internal/jobs/987654321/complete", json=FAILED, headers=HEADERS, timeout=0.05)
    # The caller gave up, but the backend went on and applied the callback.
    deadline = time.monotonic() + 5
    while client.get("/internal/jobs/987654321").status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _job(client)["state"] == "FAILED"
    assert _complete(client, DONE).json() == {
        "job_id": "987654321",
        "state": "DONE",
        "accepted": True,
    }


def test_fault_path_targets_one_job(client: httpx.Client) -> None:
    faults = [{"status": 500, "path": "/internal/jobs/b/complete"}]
    client.post("/__admin/faults", json={"faults": faults})
    assert _complete(client, DONE, job_id="a").status_code == 200
    assert _complete(client, DONE, job_id="b").status_code == 500
    assert _complete(client, DONE, job_id="b").status_code == 200


def test_token_and_latency_are_configurable(client: httpx.Client) -> None:
    client.post("/__admin/config", json={"token": "rotated", "latency_s": 0.1})
    assert _complete(client, DONE).status_code == 401
    started = time.monotonic()
    assert _complete(client, DONE, **{"X-Internal-Token": "rotated"}).status_code == 200
    assert time.monotonic() - started >= 0.1
    client.post("/__admin/reset")
    assert client.get("/internal/jobs").json() == []
    assert _complete(client, DONE).status_code == 200


def test_constructor_sets_the_token() -> None:
    with (
        start_reference_backend(BackendConfig(token="s3cret")) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert _complete(client, DONE).status_code == 401
        assert _complete(client, DONE, **{"X-Internal-Token": "s3cret"}).status_code == 200


def test_cli_prints_its_url_and_stops_on_sigterm(run_cli: CliRunner) -> None:
    with run_cli("local_stack.reference_backend", "--token", "t") as url:
        response = httpx.post(
            f"{url}/internal/jobs/j1/complete", json=DONE, headers={"X-Internal-Token": "t"}
        )
        assert response.is_success

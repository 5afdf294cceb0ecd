"""Reference backend: the job-completion callback, recorded in memory.

``POST /internal/jobs/{job_id}/complete`` checks ``X-Internal-Token`` and validates the
body with ``DoneCallback``/``FailedCallback``. Every call is recorded (headers without
the token); the job's final state follows one rule: the first DONE is terminal, a
FAILED may be replaced by a later DONE (an operator retried the job), a later FAILED
replaces nothing, and a repeated ``X-Delivery-Id`` (a re-send) changes nothing. With a
signing secret, an unsigned or wrongly signed call is refused (see
``video_processor.signing``). Calls answered with an error (bad token, invalid body, injected
fault) change no state and are kept in the job's ``rejected`` list.

Inspection: ``GET /internal/jobs/{job_id}`` (404 when never called) and ``GET /internal/jobs``.

The request body's schema is the pipeline's own ``CallbackBody``; the token, the signature
and the Content-Type are checked before it (a refused call is recorded either way).

Run it alone with ``python -m local_stack.reference_backend --port 8090``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import FastAPI
from fastapi import Response as AsgiResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from local_stack.http_fake import (
    DEFAULT_HOST,
    FakeHTTPServer,
    FakeRequest,
    FakeService,
    Fault,
    Request,
    Response,
    fake_app,
    json_response,
    serve_main,
    start_server,
    to_asgi,
    validation_message,
)
from video_processor import signing
from video_processor.models import CallbackBody, DoneCallback

TOKEN_HEADER = "X-Internal-Token"
JOBS_PATH = "/internal/jobs"
COMPLETE_PATH = re.compile(r"^/internal/jobs/(?P<job_id>[^/]+)/complete$")
DEFAULT_TOKEN = "test-internal-token"

JobState = Literal["DONE", "FAILED"]


class BackendConfig(BaseModel):
    """Runtime settings: the expected token and a fixed reply latency."""

    model_config = ConfigDict(extra="forbid")

    token: str = DEFAULT_TOKEN
    signing_secret: str | None = None
    latency_s: float = Field(default=0.0, ge=0)


@dataclass
class JobRecord:
    """Everything the backend heard about one job."""

    job_id: str
    state: JobState | None = None
    final: JsonValue = None
    callbacks: list[JsonValue] = field(default_factory=list)
    rejected: list[JsonValue] = field(default_factory=list)
    delivery_ids: set[str] = field(default_factory=set)

    def to_json(self) -> JsonValue:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "final": self.final,
            "callbacks": list(self.callbacks),
            "rejected": list(self.rejected),
        }


def next_state(current: JobState | None, incoming: JobState) -> JobState | None:
    """The state after a valid callback: None when the callback changes nothing."""
    if current is None or (current == "FAILED" and incoming == "DONE"):
        return incoming
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _headers_without_token(request: Request) -> dict[str, JsonValue]:
    """The headers, named as clients write them (the ASGI server lower-cases names)."""
    return {
        "-".join(part.capitalize() for part in name.split("-")): value
        for name, value in request.headers.items()
        if name.lower() != TOKEN_HEADER.lower()
    }


def _body_as_received(body: bytes) -> JsonValue:
    """The parsed JSON body, or its text when it is not JSON."""
    try:
        parsed: JsonValue = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
    return parsed


def _job_id_of_callback(request: Request) -> str | None:
    match = COMPLETE_PATH.match(request.path)
    return match["job_id"] if match and request.method == "POST" else None


class ReferenceBackend(FakeService[BackendConfig]):
    """Reference backend: the job-completion callback endpoint."""

    name = "reference-backend"

    def __init__(self, config: BackendConfig | None = None) -> None:
        super().__init__(config or BackendConfig())
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}

    def create_app(self) -> FastAPI:
        app = fake_app(
            self,
            title="Reference backend",
            description="Records the pipeline's job-completion callbacks.",
        )

        @app.post("/internal/jobs/{job_id}/complete")
        def complete(job_id: str, request: FakeRequest, callback: CallbackBody) -> AsgiResponse:
            return to_asgi(self.complete(request, job_id, callback))

        @app.get(JOBS_PATH)
        def jobs() -> list[JsonValue]:
            with self._lock:
                return [job.to_json() for job in self._jobs.values()]

        @app.get(JOBS_PATH + "/{job_id}")
        def job(job_id: str, request: FakeRequest) -> AsgiResponse:
            with self._lock:
                record = self._jobs.get(job_id)
                found = None if record is None else json_response(200, record.to_json())
            return to_asgi(found or self.not_found(request))

        return app

    def accepts_faults(self, method: str, path: str) -> bool:
        return method == "POST" and COMPLETE_PATH.match(path) is not None

    def refusal(self, request: Request, job_id: str, received_at: str) -> Response | None:
        """After the latency: the refusal of a call with a bad token, signature or type."""
        config = self.config
        self.sleep(config.latency_s)
        if request.header(TOKEN_HEADER) != config.token:
            return self._reject(request, job_id, received_at, 401, "invalid token")
        if config.signing_secret and not signing.verify(
            config.signing_secret,
            request.header(signing.TIMESTAMP_HEADER),
            request.body,
            request.header(signing.SIGNATURE_HEADER),
            now=time.time(),
        ):
            return self._reject(request, job_id, received_at, 401, "invalid signature")
        if request.media_type() != "application/json":
            detail = "Content-Type must be application/json"
            return self._reject(request, job_id, received_at, 415, detail)
        return None

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        job_id = _job_id_of_callback(request)
        if job_id is None:
            return self.not_found(request)
        received_at = _now()
        return self.refusal(request, job_id, received_at) or self._reject(
            request, job_id, received_at, 400, validation_message(errors)
        )

    def complete(self, request: Request, job_id: str, callback: CallbackBody) -> Response:
        """Record a valid callback and move the job's state by ``next_state``."""
        received_at = _now()
        refused = self.refusal(request, job_id, received_at)
        if refused is not None:
            return refused
        incoming: JobState = "DONE" if isinstance(callback, DoneCallback) else "FAILED"
        body = _body_as_received(request.body)
        delivery_id = request.header(signing.DELIVERY_ID_HEADER)
        with self._lock:
            job = self._jobs.setdefault(job_id, JobRecord(job_id))
            duplicate = delivery_id is not None and delivery_id in job.delivery_ids
            state = None if duplicate else next_state(job.state, incoming)
            if state is not None:
                job.state, job.final = state, body
            if delivery_id:
                job.delivery_ids.add(delivery_id)
            job.callbacks.append(
                {
                    "body": body,
                    "received_at": received_at,
                    "headers": _headers_without_token(request),
                    "accepted": state is not None,
                    "duplicate_delivery": duplicate,
                }
            )
            return json_response(
                200, {"job_id": job_id, "state": job.state, "accepted": state is not None}
            )

    def _reject(
        self, request: Request, job_id: str, received_at: str, status: int, detail: str
    ) -> Response:
        """Record a call that changes nothing and answer it with ``status``."""
        self._record_rejected(request, job_id, received_at, status, detail)
        return json_response(status, {"detail": detail})

    def _record_rejected(
        self, request: Request, job_id: str, received_at: str, status: int, detail: str
    ) -> None:
        with self._lock:
            self._jobs.setdefault(job_id, JobRecord(job_id)).rejected.append(
                {
                    "body": _body_as_received(request.body),
                    "received_at": received_at,
                    "headers": _headers_without_token(request),
                    "status": status,
                    "detail": detail,
                }
            )

    def on_fault(self, request: Request, fault: Fault) -> None:
        job_id = _job_id_of_callback(request)
        # A timeout fault only delays the call, which is then processed (and recorded) normally.
        if job_id is not None and fault.kind != "timeout":
            status = fault.status or 200
            self._record_rejected(request, job_id, _now(), status, f"injected {fault.kind} fault")

    def error_response(self, request: Request, status: int) -> Response:
        return json_response(status, {"detail": f"injected fault {status}"})

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"detail": "Not Found"})

    def extra_stats(self) -> dict[str, JsonValue]:
        with self._lock:
            jobs = list(self._jobs.values())
            return {
                "jobs": len(jobs),
                "callbacks": sum(len(job.callbacks) for job in jobs),
                "rejected": sum(len(job.rejected) for job in jobs),
                "done": sum(job.state == "DONE" for job in jobs),
                "failed": sum(job.state == "FAILED" for job in jobs),
            }

    def reset_state(self) -> None:
        with self._lock:
            self._jobs.clear()


def start_reference_backend(
    config: BackendConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[ReferenceBackend]:
    """Serve the reference backend from a daemon thread (port 0 picks a free port)."""
    return start_server(ReferenceBackend(config), host=host, port=port)


if __name__ == "__main__":
    serve_main(ReferenceBackend, BackendConfig)

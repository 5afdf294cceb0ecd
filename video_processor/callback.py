"""The backend's job-completion callback."""

from __future__ import annotations

import time

import httpx

from video_processor import signing
from video_processor.config import DEFAULT_CALLBACK_TIMEOUT_S
from video_processor.errors import CallbackError
from video_processor.http_errors import DETAIL_CHARS, HttpErrors
from video_processor.models import DoneCallback, FailedCallback

ERRORS = HttpErrors("backend", CallbackError, CallbackError)


class BackendClient:
    """POSTs final job states; what is retried follows `video_processor.http_errors`.

    Every call carries the delivery id; with a signing secret it is also signed
    (see `video_processor.signing`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        internal_token: str,
        signing_secret: str | None = None,
        timeout_s: float = DEFAULT_CALLBACK_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._signing_secret = signing_secret
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            headers={"X-Internal-Token": internal_token},
        )

    def complete_job(
        self, job_id: str, body: DoneCallback | FailedCallback, delivery_id: str
    ) -> int:
        """Send the final state of a job; returns the backend's HTTP status."""
        content = body.model_dump_json().encode()
        headers = {"Content-Type": "application/json", signing.DELIVERY_ID_HEADER: delivery_id}
        if self._signing_secret:
            timestamp = int(time.time())
            headers[signing.TIMESTAMP_HEADER] = str(timestamp)
            headers[signing.SIGNATURE_HEADER] = signing.sign(
                self._signing_secret, timestamp, content
            )
        response = ERRORS.request(
            self._client,
            "POST",
            f"/internal/jobs/{job_id}/complete",
            content=content,
            headers=headers,
        )
        if response.is_success:
            return response.status_code
        raise ERRORS.from_status(
            response.status_code, response.text[:DETAIL_CHARS], response.headers
        )

    def close(self) -> None:
        self._client.close()

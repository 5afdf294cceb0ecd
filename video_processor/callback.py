"""The backend's job-completion callback."""

from __future__ import annotations

import time

import httpx

from video_processor import signing
from video_processor.errors import CallbackError
from video_processor.models import DoneCallback, FailedCallback


class BackendClient:
    """POSTs final job states; 4xx is permanent, timeouts and 5xx are worth retrying.

    Every call carries the delivery id; with a signing secret it is also signed
    (see `video_processor.signing`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        internal_token: str,
        signing_secret: str | None = None,
        timeout_s: float = 10.0,
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
        try:
            response = self._client.post(
                f"/internal/jobs/{job_id}/complete", content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise CallbackError(f"backend timed out: {exc}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise CallbackError(f"backend unreachable: {exc}", retryable=True) from exc
        if response.is_success:
            return response.status_code
        raise CallbackError(
            f"backend answered HTTP {response.status_code}: {response.text[:200]}",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )

    def close(self) -> None:
        self._client.close()

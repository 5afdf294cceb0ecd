"""The backend's job-completion callback (contracts.md §6)."""

from __future__ import annotations

import httpx

from video_processor.errors import CallbackError
from video_processor.models import DoneCallback, FailedCallback


class BackendClient:
    """POSTs final job states; 4xx is permanent, timeouts and 5xx are worth retrying."""

    def __init__(
        self,
        *,
        base_url: str,
        internal_token: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            headers={"X-Internal-Token": internal_token},
        )

    def complete_job(self, job_id: str, body: DoneCallback | FailedCallback) -> int:
        """Send the final state of a job; returns the backend's HTTP status."""
        try:
            response = self._client.post(
                f"/internal/jobs/{job_id}/complete",
                content=body.model_dump_json(),
                headers={"Content-Type": "application/json"},
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

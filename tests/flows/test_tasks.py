"""Which failures a stage task retries."""

import httpx
import pytest
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.states import Failed

from flows.tasks import retry_if_transient
from video_processor.errors import AudioError, SpeechToTextError, SummaryTimeout


def _server_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect/api/v2/concurrency_limits/increment")
    return httpx.HTTPStatusError(
        "x", request=request, response=httpx.Response(status, request=request)
    )


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (SpeechToTextError("CLOVA CSR HTTP 500", retryable=True), True),
        (SummaryTimeout("Claude timed out", retryable=True), True),
        (SpeechToTextError("CLOVA CSR HTTP 401"), False),
        (AudioError("no audio stream"), False),
        (ConcurrencySlotAcquisitionError("503 from the Prefect API"), True),
        (httpx.ConnectError("refused"), True),
        (_server_error(503), True),
        (_server_error(429), True),
        (_server_error(404), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_failures_are_retried(error: Exception, retried: bool):
    assert retry_if_transient(None, None, Failed(data=error)) is retried  # type: ignore[arg-type]

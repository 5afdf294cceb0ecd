"""The one rule for what an HTTP failure means, shared by every HTTP client."""

import httpx
import pytest

from video_processor.errors import SpeechToTextError, SpeechToTextTimeout
from video_processor.http_errors import (
    HttpErrors,
    reply_detail,
    retryable_reply,
    retryable_status,
)

ERRORS = HttpErrors("Service", SpeechToTextError, SpeechToTextTimeout)
RETRYABLE = [408, 409, 425, 429, 500, 501, 502, 503, 504, 529, 599]
PERMANENT = [200, 302, 399, 400, 401, 403, 404, 407, 410, 413, 422, 424, 426, 428, 430, 499]


@pytest.mark.parametrize("status", RETRYABLE)
def test_timeouts_conflicts_too_early_throttling_and_5xx_are_retryable(status):
    assert retryable_status(status)
    assert ERRORS.from_status(status, "detail").retryable


@pytest.mark.parametrize("status", PERMANENT)
def test_every_other_status_is_permanent(status):
    assert not retryable_status(status)
    assert not ERRORS.from_status(status, "detail").retryable


@pytest.mark.parametrize(
    ("status", "header", "retryable"),
    [(500, "false", False), (400, "true", True), (429, "maybe", True), (400, "TRUE", False)],
)
def test_x_should_retry_overrides_the_status(status, header, retryable):
    assert retryable_reply(status, httpx.Headers({"X-Should-Retry": header})) is retryable


def test_a_gateway_timeout_is_the_services_timeout():
    error = ERRORS.from_status(504, "510 Endpoint Timeout")
    assert type(error) is SpeechToTextTimeout and error.retryable
    assert type(ERRORS.from_status(503, "x")) is SpeechToTextError


def test_a_hint_makes_a_retryable_status_permanent_and_says_what_to_fix():
    error = ERRORS.from_status(429, "400 Quota Exceeded", hint="enable the API")
    assert not error.retryable
    assert error.message == "Service HTTP 429: 400 Quota Exceeded; enable the API"
    assert type(ERRORS.from_status(504, "x", hint="h")) is SpeechToTextError


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"error": {"errorCode": "410", "message": "Throttled"}}, "410", "410 Throttled"),
        ({"code": "STT006", "message": "Failed"}, "STT006", "STT006 Failed"),
        ({"result": "FAILED", "message": "bad"}, "FAILED", "FAILED bad"),
        ({"error": {"message": "no code"}}, "", "? no code"),
        ({"detail": "Not Found"}, "", '{"detail":"Not Found"}'),
        (["not", "an", "object"], "", '["not","an","object"]'),
    ],
)
def test_reply_detail_reads_the_error_envelope(body, code, detail):
    assert reply_detail(httpx.Response(500, json=body)) == (code, detail)


def test_reply_detail_of_a_non_json_body_is_its_start():
    assert reply_detail(httpx.Response(502, text="x" * 500)) == ("", "x" * 200)


@pytest.mark.parametrize(
    ("raised", "error_type", "says"),
    [
        (httpx.ReadTimeout("slow"), SpeechToTextTimeout, "Service timed out: slow"),
        (httpx.ConnectError("refused"), SpeechToTextError, "Service unreachable: refused"),
    ],
)
def test_a_request_without_a_reply_is_retryable(raised, error_type, says):
    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    with (
        httpx.Client(transport=httpx.MockTransport(fail)) as client,
        pytest.raises(error_type) as caught,
    ):
        ERRORS.request(client, "GET", "http://service/x")
    assert type(caught.value) is error_type
    assert caught.value.retryable and caught.value.message == says
    assert caught.value.__cause__ is raised

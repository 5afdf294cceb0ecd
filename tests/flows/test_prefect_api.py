"""Busy answers of the Prefect API are asked again shortly, with the client's own
(long) retries off; refusals are not asked again."""

from __future__ import annotations

import httpx
import pytest
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

from flows.prefect_api import briefly_retried, is_busy


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect.test/api/deployments/x/create_flow_run")
    return httpx.HTTPStatusError("", request=request, response=httpx.Response(status))


class Flaky:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.client_retries: list[int] = []

    def __call__(self) -> str:
        self.calls += 1
        self.client_retries.append(PREFECT_CLIENT_MAX_RETRIES.value())
        if self.failures:
            raise self.failures.pop(0)
        return "created"


def test_busy_answers_are_asked_again_with_the_clients_retries_off():
    call = Flaky(_status_error(503), httpx.ConnectError("reset"), _status_error(429))
    retries_before = PREFECT_CLIENT_MAX_RETRIES.value()
    assert briefly_retried(call) == "created"
    assert call.calls == 4
    assert call.client_retries == [0, 0, 0, 0]
    assert PREFECT_CLIENT_MAX_RETRIES.value() == retries_before


def test_a_refusal_is_raised_at_once():
    call = Flaky(_status_error(404))
    with pytest.raises(httpx.HTTPStatusError):
        briefly_retried(call)
    assert call.calls == 1


def test_an_api_still_busy_when_patience_runs_out_is_raised_for_the_callers_retry():
    call = Flaky(*[_status_error(503) for _ in range(100)])
    with pytest.raises(httpx.HTTPStatusError):
        briefly_retried(call, patience_s=1.0)
    assert 2 <= call.calls < 100


@pytest.mark.parametrize(("status", "busy"), [(503, True), (502, True), (423, False), (500, False)])
def test_what_counts_as_busy(status: int, busy: bool):
    assert is_busy(_status_error(status)) is busy

"""Engine slots against the local stack's Prefect server: a full limit makes the next
holder wait, every slot is given back, a missing limit is refused. A busy server's 503,
which the real one gives only under load, comes from a stand-in for its endpoint."""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from flows.slots import _acquire, engine_slot
from tests.e2e.stack_client import StackClient

WAIT_S = 20.0


@pytest.fixture
def limit_of_one(stack: StackClient) -> Iterator[str]:
    name = f"test-slot-{uuid.uuid4().hex[:8]}"
    settings = {
        PREFECT_API_URL: stack.env["PREFECT_API_URL"],
        PREFECT_API_AUTH_STRING: stack.env["PREFECT_API_AUTH_STRING"],
    }
    with stack.prefect() as client, temporary_settings(updates=settings):
        client.upsert_global_concurrency_limit_by_name(name, 1)
        try:
            yield name
        finally:
            client.delete_global_concurrency_limit_by_name(name)


def _active_slots(stack: StackClient, name: str) -> int:
    with stack.prefect() as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_a_full_limit_makes_the_next_holder_wait_until_the_slot_is_released(
    stack: StackClient, limit_of_one: str
):
    second_entered = threading.Event()

    def second_holder() -> None:
        with engine_slot(limit_of_one):
            second_entered.set()

    with engine_slot(limit_of_one):
        assert _active_slots(stack, limit_of_one) == 1
        # In this context: the thread talks to the stack's server, as a run's threads do.
        waiter = threading.Thread(target=contextvars.copy_context().run, args=(second_holder,))
        waiter.start()
        # The second holder is refused (423) while this one holds the only slot.
        assert not second_entered.wait(2.5)
    assert second_entered.wait(WAIT_S)
    waiter.join(WAIT_S)
    assert _active_slots(stack, limit_of_one) == 0


def test_the_slot_is_released_when_the_work_raises(stack: StackClient, limit_of_one: str):
    with pytest.raises(RuntimeError), engine_slot(limit_of_one):
        raise RuntimeError("the request failed")
    assert _active_slots(stack, limit_of_one) == 0


def test_a_limit_that_does_not_exist_is_refused(stack: StackClient, limit_of_one: str):
    missing = f"{limit_of_one}-missing"
    with (
        pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"),
        engine_slot(missing),
    ):
        pass


class BusyPrefectApi:
    """Prefect's increment-with-lease endpoint on a busy server: `busy` answers of 503
    ("database is locked" on SQLite), then the lease."""

    def __init__(self, busy: int, final_status: int = 200) -> None:
        self.busy = busy
        self.final_status = final_status
        self.requests: list[httpx.Request] = []
        self.lease_id = uuid.uuid4()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/csrf-token"):  # as a server with CSRF protection off
            return httpx.Response(422, json={"detail": "CSRF protection is disabled."})
        self.requests.append(request)
        if len(self.requests) <= self.busy:
            return httpx.Response(503, json={"exception_message": "Service Unavailable"})
        if self.final_status != 200:
            return httpx.Response(self.final_status, json={"detail": "refused"})
        limit = {"id": str(uuid.uuid4()), "name": "stt-clova-csr", "limit": 8}
        return httpx.Response(200, json={"lease_id": str(self.lease_id), "limits": [limit]})

    def client(self) -> SyncPrefectClient:
        transport = httpx.MockTransport(self)
        return SyncPrefectClient("http://prefect.test/api", httpx_settings={"transport": transport})


def test_a_busy_server_is_asked_again_by_the_slot_request_itself():
    api = BusyPrefectApi(busy=2)
    with api.client() as client:
        assert _acquire(client, "stt-clova-csr") == api.lease_id
    assert [request.url.path for request in api.requests] == [
        "/api/v2/concurrency_limits/increment-with-lease"
    ] * 3
    assert json.loads(api.requests[-1].content)["names"] == ["stt-clova-csr"]


def test_a_refusal_is_not_asked_again():
    api = BusyPrefectApi(busy=0, final_status=422)
    with api.client() as client, pytest.raises(ConcurrencySlotAcquisitionError, match="422"):
        _acquire(client, "stt-clova-csr")
    assert len(api.requests) == 1

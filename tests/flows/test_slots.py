"""Engine slots against the local stack's Prefect server: a full limit makes the next
holder wait, every slot is given back, a missing limit is refused."""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Iterator

import pytest
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from flows.slots import engine_slot
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

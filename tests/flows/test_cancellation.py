"""Cooperative cancellation: a request is seen by the run it names, and only by it."""

import uuid

import pytest

from flows import cancellation


def test_a_requested_run_raises_at_its_next_check_and_others_do_not(monkeypatch):
    mine, other = uuid.uuid4(), uuid.uuid4()
    monkeypatch.setattr("flows.cancellation.flow_run.get_id", lambda: str(mine))
    cancellation.request(other)
    cancellation.raise_if_requested()  # another run's request

    cancellation.request(mine)
    with pytest.raises(cancellation.RunCancelled, match=str(mine)):
        cancellation.raise_if_requested()

    cancellation.forget(mine)
    cancellation.forget(other)
    cancellation.raise_if_requested()
    assert not cancellation.is_requested(other)


def test_outside_a_run_nothing_is_checked(monkeypatch):
    monkeypatch.setattr("flows.cancellation.flow_run.get_id", lambda: None)
    cancellation.raise_if_requested()

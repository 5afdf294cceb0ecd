"""The crash-recovery decision: bounded reschedules, double Crashed counted once."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.client.schemas.objects import State, StateType
from prefect.states import Crashed

from flows.recovery import Decision, crash_count, decide, long_crashed_runs

START = datetime(2026, 1, 1, tzinfo=UTC)


def history(*types: StateType) -> list[State]:
    return [
        State(type=kind, timestamp=START + timedelta(seconds=i)) for i, kind in enumerate(types)
    ]


R, C, S, P = StateType.RUNNING, StateType.CRASHED, StateType.SCHEDULED, StateType.PENDING


def test_each_crashed_attempt_counts_once_even_when_reported_twice():
    assert crash_count(history(S, P, R, C)) == 1
    assert crash_count(history(S, P, R, C, C)) == 1  # worker report + zombie automation
    assert crash_count(history(S, P, R, C, S, P, R, C)) == 2
    assert crash_count(list(reversed(history(S, P, R, C, S, P, R, C, C)))) == 2


@pytest.mark.parametrize(
    ("current", "crashes", "expected"),
    [
        (StateType.CRASHED, 1, Decision.RESCHEDULE),
        (StateType.CRASHED, 2, Decision.RESCHEDULE),
        (StateType.CRASHED, 3, Decision.GIVE_UP),
        (StateType.SCHEDULED, 1, Decision.SKIP),  # a second recovery of the same crash
        (StateType.RUNNING, 2, Decision.SKIP),
        (StateType.COMPLETED, 1, Decision.SKIP),
    ],
)
def test_decision(current, crashes, expected):
    assert decide(current, crashes, max_reschedules=2) is expected


class FakeRuns:
    """The two calls the sweep makes; runs are (id, Crashed-state age in seconds)."""

    def __init__(self, runs: list[tuple[uuid.UUID, float]]) -> None:
        self.runs = runs
        self.filters: dict[str, Any] = {}

    def read_deployment_by_name(self, name: str):
        return SimpleNamespace(id=uuid.UUID(int=7), name=name)

    def read_flow_runs(self, **filters):
        self.filters = filters
        now = datetime.now(UTC)
        return [
            SimpleNamespace(id=run_id, state=Crashed(timestamp=now - timedelta(seconds=age)))
            for run_id, age in self.runs
        ]


def test_the_sweep_takes_only_runs_crashed_for_longer_than_its_delay():
    old, fresh = uuid.uuid4(), uuid.uuid4()
    client = FakeRuns([(old, 900), (fresh, 30)])
    assert long_crashed_runs(client, ["process-video/x"], 300) == [old]  # type: ignore[arg-type]
    assert client.filters["flow_run_filter"].state.type.any_ == [StateType.CRASHED]
    assert client.filters["deployment_filter"].id.any_ == [uuid.UUID(int=7)]

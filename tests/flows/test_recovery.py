"""The crash-recovery decision: bounded reschedules, double Crashed counted once."""

from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.schemas.objects import State, StateType

from flows.recovery import Decision, crash_count, decide

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

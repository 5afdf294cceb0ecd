"""Cooperative cancellation of runs executed in-process (the warm worker).

A worker that runs flows in its own threads cannot kill one run's process; it records the
request here, and every stage task checks it when it starts, `transcribe` also before
each chunk (`raise_if_requested()`). A process-per-run worker kills the process instead,
so there nothing is ever requested and the check costs a set lookup.
"""

from __future__ import annotations

import threading
from uuid import UUID

from prefect.runtime import flow_run

_requested: set[UUID] = set()
_lock = threading.Lock()


class RunCancelled(Exception):
    """The run was cancelled from the UI or API while a stage was working."""


def request(flow_run_id: UUID) -> None:
    with _lock:
        _requested.add(flow_run_id)


def forget(flow_run_id: UUID) -> None:
    with _lock:
        _requested.discard(flow_run_id)


def is_requested(flow_run_id: UUID) -> bool:
    with _lock:
        return flow_run_id in _requested


def raise_if_requested() -> None:
    """Raise RunCancelled when the current flow run has been asked to stop."""
    run_id = flow_run.get_id()
    if run_id is not None and is_requested(UUID(run_id)):
        raise RunCancelled(f"flow run {run_id} was cancelled")

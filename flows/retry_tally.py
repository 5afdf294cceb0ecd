"""Retries of a flow run's tasks, counted in its own process for the usage ledger.

A task's `on_completion` hook sees its run count; the flow reads the tally once at the end.
Tasks run in threads of the flow-run process, so a process-local counter is complete.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

_lock = threading.Lock()
_retries: Counter[str] = Counter()


def count_retries(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> None:
    """Completion hook: attempts beyond the first are added to the flow run's tally."""
    if task_run.flow_run_id is not None and task_run.run_count > 1:
        with _lock:
            _retries[str(task_run.flow_run_id)] += task_run.run_count - 1


def retries_of(flow_run_id: str) -> int:
    """The flow run's task retries so far (and forget them)."""
    with _lock:
        return _retries.pop(flow_run_id, 0)

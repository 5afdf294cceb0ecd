"""The backfill's run starter: bounded concurrency, and runs someone else created first."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from flows import backfill as backfill_flow
from flows.runs import Routes
from video_processor.backfill import BackfillAction, plan
from video_processor.models import JobContext, S3ObjectRef

MARKER = "backfill-run:test"


def job(name: str) -> JobContext:
    found = JobContext.from_object(S3ObjectRef(bucket="b", key=f"videos/u/{name}.mp4", etag="e"))
    assert found is not None
    return found


@dataclass
class FakePrefect:
    """Runs finish when the starter waits; keys in `taken` already have someone's run."""

    taken: set[str] = field(default_factory=set)
    active: list[uuid.UUID] = field(default_factory=list)
    most_active: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)

    def create_flow_run_from_deployment(self, deployment_id, **kwargs):
        run_id = uuid.uuid4()
        if kwargs["idempotency_key"] in self.taken:
            return type("FlowRun", (), {"id": run_id, "tags": ["user:u"]})()
        self.created.append(kwargs)
        self.active.append(run_id)
        self.most_active = max(self.most_active, len(self.active))
        return type("FlowRun", (), {"id": run_id, "tags": kwargs["tags"]})()

    def read_flow_runs(self, *, flow_run_filter, limit):
        wanted = set(flow_run_filter.id.any_)
        return [run_id for run_id in self.active if run_id in wanted]


def test_never_more_than_the_bound_unfinished_and_races_are_reported(monkeypatch):
    prefect = FakePrefect(taken={job("c").idempotency_key})
    monkeypatch.setattr("flows.backfill.time.sleep", lambda _s: prefect.active.pop(0))
    jobs = [job(name) for name in "abcdefg"]
    the_plan = plan(jobs, result_keys={jobs[0].result_key}, run_keys=set())
    progress: list[tuple[int, int, int]] = []

    items = backfill_flow.start_runs(
        prefect,  # type: ignore[arg-type]
        the_plan,
        Routes(warm=uuid.uuid4()),
        marker_tag=MARKER,
        job_variables={"env": {"X": "1"}},
        max_concurrent_runs=2,
        poll_interval_s=0,
        progress=lambda *args: progress.append(args),
        logger=logging.getLogger("test"),
    )

    assert [(item.job.job_id, item.action) for item in items] == [
        ("a", BackfillAction.SKIPPED_HAS_RESULT),
        ("b", BackfillAction.STARTED),
        ("c", BackfillAction.SKIPPED_ALREADY_RUN),  # the sensor got there in between
        ("d", BackfillAction.STARTED),
        ("e", BackfillAction.STARTED),
        ("f", BackfillAction.STARTED),
        ("g", BackfillAction.STARTED),
    ]
    assert prefect.most_active == 2
    assert progress[-1] == (6, 6, 5)
    first = prefect.created[0]
    assert first["name"] == "job-b"
    assert first["idempotency_key"] == job("b").idempotency_key
    assert first["parameters"] == {"job": job("b").model_dump(mode="json")}
    assert first["job_variables"] == {"env": {"X": "1"}}
    assert MARKER in first["tags"]


@pytest.mark.parametrize("entrypoint", ["flows/backfill.py:backfill"])
def test_backfill_parameters_have_a_schema(entrypoint):
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    schema = parameter_schema(load_flow_from_entrypoint(entrypoint)).model_dump()
    assert {"prefix", "since", "until", "max_objects", "dry_run", "max_concurrent_runs"} <= set(
        schema["properties"]
    )

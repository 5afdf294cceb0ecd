"""Routing by size: which deployment a job's run is started on, and how it is tagged."""

import uuid
from typing import Any

import pytest

from flows.runs import Route, Routes, start_process_video_run
from video_processor.models import JobContext

WARM, ISOLATED = uuid.uuid4(), uuid.uuid4()
LIMIT = 100


def job(size: int | None) -> JobContext:
    return JobContext(
        bucket="b", key="videos/u/j.mp4", user_id="u", job_id="j", extension="mp4", size=size
    )


@pytest.mark.parametrize(
    ("size", "route"),
    [
        (0, Route.WARM),
        (LIMIT, Route.WARM),  # the limit itself still runs warm
        (LIMIT + 1, Route.ISOLATED),
        (None, Route.ISOLATED),  # unknown size: the safe side
    ],
)
def test_uploads_up_to_the_limit_run_warm_larger_or_unknown_ones_isolated(size, route):
    routes = Routes(warm=WARM, isolated=ISOLATED, max_warm_bytes=LIMIT)
    assert routes.for_job(job(size)) == (route, WARM if route is Route.WARM else ISOLATED)


def test_without_an_isolated_deployment_every_run_goes_to_the_one_given():
    assert Routes(warm=WARM).for_job(job(10**12)) == (Route.WARM, WARM)
    assert Routes(warm=WARM).deployment_ids == [WARM]
    assert Routes(warm=WARM, isolated=ISOLATED).deployment_ids == [WARM, ISOLATED]


class RecordingPrefect:
    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, dict[str, Any]]] = []

    def create_flow_run_from_deployment(self, deployment_id, **kwargs):
        self.calls.append((deployment_id, kwargs))
        return type("FlowRun", (), {"id": uuid.uuid4(), "tags": kwargs["tags"]})()


def test_the_run_carries_the_job_its_idempotency_key_and_its_route_tag():
    prefect = RecordingPrefect()
    routes = Routes(warm=WARM, isolated=ISOLATED, max_warm_bytes=LIMIT)
    the_job = job(LIMIT * 2)

    _, route = start_process_video_run(prefect, routes, the_job, tags=["backfill"])  # type: ignore[arg-type]

    [(deployment_id, kwargs)] = prefect.calls
    assert route is Route.ISOLATED and deployment_id == ISOLATED
    assert kwargs["idempotency_key"] == the_job.idempotency_key
    assert kwargs["parameters"] == {"job": the_job.model_dump(mode="json")}
    assert kwargs["tags"] == ["user:u", "route:isolated", "backfill"]
    assert kwargs["name"] == "job-j"

"""The warm worker's engine skips the rename of a run its creator already named."""

from __future__ import annotations

import uuid

from prefect.client.schemas.objects import FlowRun

from flows.process_video import process_video
from video_processor.models import JobContext, S3ObjectRef
from workers.engine import already_named


def _run(name: str, parameters: dict[str, object]) -> FlowRun:
    return FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name=name, parameters=parameters)


def _job() -> JobContext:
    job = JobContext.from_object(S3ObjectRef(bucket="videos", key="videos/u1/j1.mp4", size=5))
    assert job is not None
    return job


def test_a_run_named_as_the_flow_names_it_is_not_renamed():
    job = _job()
    assert already_named(process_video, _run(job.run_name, {"job": job.model_dump(mode="json")}))


def test_a_run_with_another_name_is_renamed_by_the_engine():
    job = _job()
    assert not already_named(process_video, _run("crimson-tiger", {"job": job.model_dump()}))


def test_parameters_that_do_not_fill_the_template_leave_the_rename_to_the_engine():
    assert not already_named(process_video, _run("job-j1", {"job": {"key": "videos/u1/j1.mp4"}}))

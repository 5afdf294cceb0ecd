"""The isolated path (a process per run, as a pod per run in production): a flow run whose
process is SIGKILLed is rescheduled by the automations and ends DONE.

The sensor routes small uploads to the warm worker, so the test creates the job's run on
the isolated deployment first, with the idempotency key the sensor will use: the sensor's
own request then maps onto that run."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.schemas.objects import StateType

from flows.runs import Route, Routes, start_process_video_run
from local_stack.sample_video import make_tone_video
from local_stack.stack import ISOLATED_DEPLOYMENT
from tests.e2e.stack_client import StackClient, new_job_id, wait_for_run_state
from video_processor.models import JobContext, S3ObjectRef

pytestmark = pytest.mark.e2e
SLOW_STT_S = 6.0


def flow_run_process(flow_run_id: str) -> int | None:
    """The pid of the process executing a flow run (the worker sets its id in the env)."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            return int(entry.name)
    return None


def start_on_isolated_deployment(stack: StackClient, video: Path, key: str) -> None:
    """The job's run, on the process worker's deployment, before its upload is announced."""
    etag = hashlib.md5(video.read_bytes()).hexdigest()  # a single-part upload's eTag
    job = JobContext.from_object(
        S3ObjectRef(bucket=stack.video_bucket, key=key, size=video.stat().st_size, etag=etag)
    )
    assert job is not None
    with stack.prefect() as client:
        routes = Routes(warm=client.read_deployment_by_name(ISOLATED_DEPLOYMENT).id)
        _, route = start_process_video_run(client, routes, job)
    assert route is Route.WARM  # the only route of `routes`: the isolated deployment


def test_killed_run_is_rescheduled_by_the_automations_and_ends_done(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    clova = stack.fake("clova")
    httpx.post(f"{clova}/__admin/config", json={"base_latency_s": SLOW_STT_S}).raise_for_status()
    video = make_tone_video(tmp_path / "clip.mp4", seconds=3)
    key = f"videos/crash/{job_id}.mp4"
    start_on_isolated_deployment(stack, video, key)
    stack.upload(video, key)

    [run] = wait_for_run_state(stack, f"job-{job_id}", StateType.RUNNING, timeout_s=60)
    deadline = time.monotonic() + 60
    while stack.stats("clova")["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = flow_run_process(str(run.id))
    assert pid is not None, "the flow run's process was not found"
    os.kill(pid, signal.SIGKILL)
    httpx.post(f"{clova}/__admin/config", json={"base_latency_s": 0}).raise_for_status()

    job = stack.wait_for_callbacks(job_id, timeout_s=180)

    assert job["final"]["status"] == "DONE"
    assert len(job["callbacks"]) == 1
    wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)
    [only_run] = stack.flow_runs_named(f"job-{job_id}")
    with stack.prefect() as client:
        assert only_run.deployment_id == client.read_deployment_by_name(ISOLATED_DEPLOYMENT).id
    with stack.prefect() as client:
        states = [state.type for state in client.read_flow_run_states(run.id)]
    assert StateType.CRASHED in states
    assert states[-1] is StateType.COMPLETED

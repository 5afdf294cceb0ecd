"""A flow run whose process is SIGKILLed is rescheduled by the automations and ends DONE."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.schemas.objects import StateType

from local_stack.sample_video import make_tone_video
from tests.e2e.stack_client import StackClient, new_job_id, wait_for_run_state

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


def test_killed_run_is_rescheduled_by_the_automations_and_ends_done(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    clova = stack.fake("clova")
    httpx.post(f"{clova}/__admin/config", json={"base_latency_s": SLOW_STT_S}).raise_for_status()
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/crash/{job_id}.mp4")

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
    assert len(stack.flow_runs_named(f"job-{job_id}")) == 1
    with stack.prefect() as client:
        states = [state.type for state in client.read_flow_run_states(run.id)]
    assert StateType.CRASHED in states
    assert states[-1] is StateType.COMPLETED

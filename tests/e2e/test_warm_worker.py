"""The warm worker keeps what operators rely on: cancellation, a draining SIGTERM, and
crash recovery when its process is killed (the stack's supervisor starts a successor,
as Kubernetes restarts a pod)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from local_stack.sample_video import make_tone_video
from tests.e2e.stack_client import StackClient, new_job_id, wait_for_run_state

pytestmark = pytest.mark.e2e
SLOW_STT_S = 4.0  # under the fake-mode client timeout (5 s)
SUCCESSOR_TIMEOUT_S = 60.0


@pytest.fixture
def slow_stt(stack: StackClient) -> Iterator[None]:
    stack.configure("clova", base_latency_s=SLOW_STT_S)
    yield
    stack.configure("clova", base_latency_s=0)


def start_job_and_wait_for_stt(stack: StackClient, tmp_path: Path, user: str) -> tuple[str, str]:
    """Upload a clip; return its job id and run id once its STT request is in flight."""
    job_id = new_job_id()
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/{user}/{job_id}.mp4")
    [run] = wait_for_run_state(stack, f"job-{job_id}", StateType.RUNNING, timeout_s=90)
    deadline = time.monotonic() + 60
    while stack.stats("clova")["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.stats("clova")["in_flight"] > 0, "the run's STT request never started"
    return job_id, str(run.id)


def wait_for_successor(stack: StackClient, old_pid: int) -> int:
    deadline = time.monotonic() + SUCCESSOR_TIMEOUT_S
    while time.monotonic() < deadline:
        pid = stack.warm_worker_pid()
        if pid is not None and pid != old_pid:
            return pid
        time.sleep(0.5)
    raise AssertionError("no warm worker was started in place of the stopped one")


def states_of(stack: StackClient, run_id: str) -> list[StateType]:
    with stack.prefect() as client:
        return [state.type for state in client.read_flow_run_states(UUID(run_id))]


@pytest.mark.usefixtures("slow_stt")
def test_a_run_cancelled_from_the_api_stops_before_the_summary_and_reports_failed(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id, run_id = start_job_and_wait_for_stt(stack, tmp_path, "cancel")
    summaries_before = stack.stats("anthropic")["requests"]
    with stack.prefect() as client:
        client.set_flow_run_state(run_id, Cancelling(message="cancelled in the UI"))

    wait_for_run_state(stack, f"job-{job_id}", StateType.CANCELLED, timeout_s=60)
    job = stack.wait_for_callbacks(job_id)

    assert job["final"]["status"] == "FAILED"
    assert "cancelled" in job["final"]["error_message"]
    assert stack.stats("anthropic")["requests"] == summaries_before
    assert stack.warm_worker_pid() is not None  # one run cancelled, the worker goes on


@pytest.mark.usefixtures("slow_stt")
def test_sigterm_lets_the_run_in_hand_finish_then_the_worker_exits(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id, run_id = start_job_and_wait_for_stt(stack, tmp_path, "drain")
    pid = stack.warm_worker_pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)

    job = stack.wait_for_callbacks(job_id)
    successor = wait_for_successor(stack, pid)
    wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)

    assert job["final"]["status"] == "DONE"
    assert StateType.CRASHED not in states_of(stack, run_id)
    assert states_of(stack, run_id)[-1] is StateType.COMPLETED
    assert successor != pid
    assert "WORKER_DRAIN" in (stack.folder / "logs" / "warm-worker.log").read_text()


@pytest.mark.usefixtures("slow_stt")
def test_a_killed_warm_worker_leaves_crashed_runs_that_are_recovered_to_done(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id, run_id = start_job_and_wait_for_stt(stack, tmp_path, "kill")
    pid = stack.warm_worker_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    stack.configure("clova", base_latency_s=0)

    job = stack.wait_for_callbacks(job_id, timeout_s=300)  # the zombie window, then recovery

    assert job["final"]["status"] == "DONE"
    assert len(job["callbacks"]) == 1
    wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)  # after the callback
    assert len(stack.flow_runs_named(f"job-{job_id}")) == 1
    states = states_of(stack, run_id)
    assert StateType.CRASHED in states
    assert states[-1] is StateType.COMPLETED

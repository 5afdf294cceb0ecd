"""End to end: `prefect deploy --all` against the stack's server, and the sensor's metrics."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from local_stack.sample_video import make_tone_video
from local_stack.stack import PREFECT_CLI, REPO_ROOT
from tests.e2e.stack_client import StackClient

pytestmark = pytest.mark.e2e


def test_deploy_all_is_non_interactive_and_configures_every_deployment(
    stack: StackClient,
) -> None:
    """The stack created both pools (the k8s one has no worker); deploying is idempotent."""
    deployed = subprocess.run(
        [PREFECT_CLI, "--no-prompt", "deploy", "--all"],
        cwd=REPO_ROOT,
        env={**os.environ, **stack.env, "APP_ROOT": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    with stack.prefect() as client:
        local = client.read_deployment_by_name("process-video/process-video-local")
        k8s = client.read_deployment_by_name("process-video/process-video-k8s")
        backfill = client.read_deployment_by_name("backfill/backfill")
    assert local.work_pool_name == backfill.work_pool_name == "local-process"
    assert k8s.work_pool_name == "video-k8s"
    assert local.flow_id == k8s.flow_id  # one flow: idempotency keys are shared
    assert k8s.job_variables["namespace"] == "video-processor"
    assert k8s.job_variables["env_from"] == [{"secretRef": {"name": "video-processor-env"}}]
    assert k8s.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}
    ]
    for deployment in (local, k8s, backfill):
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit >= 1
    assert backfill.global_concurrency_limit is not None
    assert backfill.global_concurrency_limit.limit == 1
    assert [schedule.active for schedule in backfill.schedules] == [False]
    assert backfill.parameters["prefix"] == "videos/"


def sensor_url(stack: StackClient) -> str:
    return f"http://127.0.0.1:{stack.env['SENSOR_METRICS_PORT']}"


def scrape(stack: StackClient) -> dict[str, float]:
    response = httpx.get(f"{sensor_url(stack)}/metrics", timeout=5)
    response.raise_for_status()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


def test_sensor_serves_metrics_that_count_a_job_from_upload_to_completion(
    stack: StackClient, tmp_path: Path
) -> None:
    assert httpx.get(f"{sensor_url(stack)}/healthz", timeout=5).status_code == 200
    before = scrape(stack)
    job_id = f"m{uuid.uuid4().hex[:12]}"
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=1), f"videos/u-m/{job_id}.mp4")
    assert stack.wait_for_callbacks(job_id)["final"]["status"] == "DONE"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        after = scrape(stack)
        if after["jobs_completed_total"] > before["jobs_completed_total"]:
            break
        time.sleep(0.5)
    assert after["jobs_started_total"] >= before["jobs_started_total"] + 1
    assert after["jobs_completed_total"] >= before["jobs_completed_total"] + 1
    assert after["sqs_messages_received_total"] >= before["sqs_messages_received_total"] + 1
    assert after["sqs_messages_deleted_total"] >= before["sqs_messages_deleted_total"] + 1
    assert after["sensor_last_successful_poll_timestamp_seconds"] > time.time() - 60
    response = httpx.get(f"{sensor_url(stack)}/metrics", timeout=5)
    assert 'processing_duration_seconds_count{outcome="completed"}' in response.text

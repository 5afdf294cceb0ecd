"""End to end: the `backfill` deployment, run by the local stack's worker.

Backfill exists for videos the sensor never saw: objects uploaded before the bucket
notification existed, or while it was broken. The tests make exactly that situation:
they switch the video bucket's S3 → SQS notification off while uploading (and back on
afterwards, whatever happens), so no SQS message and no sensor run exists for those
objects. Each test uses its own user id, i.e. its own prefix `videos/<user>/`, so the
counts cannot be disturbed by other tests' uploads. The "already handled by the sensor"
case is made the honest way too: one upload with the notification on, whose run the
sensor creates, and the backfill must recognise it by the sensor's idempotency key.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.objects import FlowRun, StateType

from local_stack.sample_video import make_tone_video
from tests.e2e.stack_client import StackClient

pytestmark = pytest.mark.e2e
BACKFILL_DEPLOYMENT = "backfill/backfill"
K8S_DEPLOYMENT = "process-video/process-video-k8s"  # no worker in the local stack
BACKFILL_TIMEOUT_S = 120.0


@contextmanager
def notifications_off(stack: StackClient) -> Iterator[None]:
    """Uploads inside announce nothing on SQS (as if made before the pipeline existed)."""
    s3 = stack.s3()
    saved = s3.get_bucket_notification_configuration(Bucket=stack.video_bucket)
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(
        Bucket=stack.video_bucket, NotificationConfiguration={}
    )
    try:
        yield
    finally:
        s3.put_bucket_notification_configuration(
            Bucket=stack.video_bucket, NotificationConfiguration=saved
        )


def run_backfill(stack: StackClient, **parameters: Any) -> FlowRun:
    """Run the backfill deployment through the worker, as the UI or a schedule would."""
    with stack.prefect() as client:
        deployment = client.read_deployment_by_name(BACKFILL_DEPLOYMENT)
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        deadline = time.monotonic() + BACKFILL_TIMEOUT_S
        while time.monotonic() < deadline:
            run = client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            time.sleep(0.5)
    assert run.state_type == StateType.COMPLETED, run.state
    return run


def artifact_data(stack: StackClient, run: FlowRun, key: str) -> Any:
    with stack.prefect() as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
                key=ArtifactFilterKey(any_=[key]),
            )
        )
    assert len(artifacts) == 1, artifacts
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


def report(stack: StackClient, run: FlowRun) -> dict[str, str]:
    """The backfill's table artifact, as {key: action}."""
    rows = artifact_data(stack, run, "backfill-report")
    return {row["key"]: row["action"] for row in rows}


def runs_of(stack: StackClient, job_id: str) -> list[FlowRun]:
    return stack.flow_runs_named(f"job-{job_id}")


def test_backfill_starts_one_run_per_video_without_result_and_a_rerun_starts_none(
    stack: StackClient, tmp_path: Path
) -> None:
    """20 videos, 5 with a result: 15 runs started, a correct report, then a no-op rerun.

    The runs go to `process-video-k8s`, whose pool has no worker in the local stack: they
    are created (Scheduled) and stay so. What is under test is what the backfill decides
    and starts; 15 pipelines at once would only load this 2-core machine (the runs a
    backfill starts are shown to complete in the next test).
    """
    user = f"bf{uuid.uuid4().hex[:10]}"
    prefix = f"videos/{user}/"
    video = make_tone_video(tmp_path / "clip.mp4", seconds=1)
    job_ids = [f"{user}-{index:02d}" for index in range(20)]
    with notifications_off(stack):
        for job_id in job_ids:
            stack.upload(video, f"{prefix}{job_id}.mp4")
    done_before = job_ids[:5]
    for job_id in done_before:  # processed long ago: the result JSON is there
        stack.s3().put_object(
            Bucket=stack.result_bucket,
            Key=f"results/{user}/{job_id}.json",
            Body=json.dumps({"job_id": job_id}).encode(),
        )

    first = run_backfill(stack, prefix=prefix, deployment=K8S_DEPLOYMENT, max_concurrent_runs=20)

    expected = {f"{prefix}{job_id}.mp4": "skipped-has-result" for job_id in done_before}
    expected |= {f"{prefix}{job_id}.mp4": "started" for job_id in job_ids[5:]}
    assert report(stack, first) == expected
    assert artifact_data(stack, first, "backfill-progress") == 100.0
    with stack.prefect() as client:
        k8s = client.read_deployment_by_name(K8S_DEPLOYMENT)
    for job_id in job_ids[5:]:
        [run] = runs_of(stack, job_id)
        assert run.deployment_id == k8s.id
        assert "backfill" in run.tags
        assert run.parameters["job"]["key"] == f"{prefix}{job_id}.mp4"
    for job_id in done_before:
        assert runs_of(stack, job_id) == []

    second = run_backfill(stack, prefix=prefix, deployment=K8S_DEPLOYMENT, max_concurrent_runs=20)

    expected |= {f"{prefix}{job_id}.mp4": "skipped-already-run" for job_id in job_ids[5:]}
    assert report(stack, second) == expected
    for job_id in job_ids:
        assert len(runs_of(stack, job_id)) == (0 if job_id in done_before else 1)


def test_backfill_recognises_the_sensors_run_supports_dry_run_and_its_runs_complete(
    stack: StackClient, tmp_path: Path
) -> None:
    """One video the sensor saw (its run exists) and one it never saw.

    A dry run reports both and starts nothing; the real backfill then starts only the
    unseen one, on the local deployment, and that run ends with its DONE callback.
    """
    user = f"bf{uuid.uuid4().hex[:10]}"
    prefix = f"videos/{user}/"
    video = make_tone_video(tmp_path / "clip.mp4", seconds=1)
    unseen, announced = f"{user}-unseen", f"{user}-announced"
    with notifications_off(stack):
        stack.upload(video, f"{prefix}{unseen}.mp4")
    stack.upload(video, f"{prefix}{announced}.mp4")  # the sensor starts this one
    deadline = time.monotonic() + 30
    while not runs_of(stack, announced) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert runs_of(stack, announced), "the sensor did not start a run"
    # Found by the sensor's idempotency key, or by its result if it already finished.
    handled = {"skipped-already-run", "skipped-has-result"}

    dry = run_backfill(stack, prefix=prefix, dry_run=True)

    actions = report(stack, dry)
    assert set(actions) == {f"{prefix}{unseen}.mp4", f"{prefix}{announced}.mp4"}
    assert actions[f"{prefix}{unseen}.mp4"] == "dry-run"
    assert actions[f"{prefix}{announced}.mp4"] in handled
    assert runs_of(stack, unseen) == []

    real = run_backfill(stack, prefix=prefix)

    actions = report(stack, real)
    assert actions[f"{prefix}{unseen}.mp4"] == "started"
    assert actions[f"{prefix}{announced}.mp4"] in handled
    assert stack.wait_for_callbacks(unseen)["final"]["status"] == "DONE"
    assert stack.wait_for_callbacks(announced)["final"]["status"] == "DONE"
    assert len(runs_of(stack, unseen)) == len(runs_of(stack, announced)) == 1

"""End to end: `python -m sensors.redrive` moves the valid S3 events of the dead-letter queue
back to the ingest queue, where the sensor starts their runs, and keeps the junk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_stack.sample_video import make_tone_video
from local_stack.stack import REPO_ROOT
from tests.e2e.stack_client import StackClient, new_job_id
from tests.e2e.test_backfill import notifications_off

pytestmark = pytest.mark.e2e


def redrive(stack: StackClient, *options: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "sensors.redrive", *options],
        cwd=REPO_ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout))


def test_redrive_moves_the_valid_event_and_keeps_the_junk(stack: StackClient, tmp_path: Path):
    job_id = new_job_id()
    key = f"videos/dlq/{job_id}.mp4"
    with notifications_off(stack):  # an upload whose event never reached the queue
        head = stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=2), key)
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": stack.video_bucket},
                    "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"]},
                },
            }
        ]
    }
    sqs, dlq = stack.sqs(), stack.env["SQS_DLQ_URL"]
    valid = sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event))["MessageId"]
    junk = sqs.send_message(QueueUrl=dlq, MessageBody="<html>not an event</html>")["MessageId"]

    dry = redrive(stack, "--dry-run")
    assert dry["dry_run"] and valid in dry["redriven"] and junk in dry["kept"]
    assert stack.job(job_id) is None  # nothing moved

    report = redrive(stack)

    assert valid in report["redriven"]
    assert "not JSON" in report["kept"][junk]
    job = stack.wait_for_callbacks(job_id)
    assert job["state"] == "DONE"
    left = redrive(stack, "--dry-run")  # reads the whole dead-letter queue, moves nothing
    assert junk in left["kept"]
    assert valid not in left["kept"] and valid not in left["redriven"]

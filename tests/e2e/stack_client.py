"""Test-side handle on a running local stack: upload, wait, inspect, inject faults."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun, StateType

from local_stack.stack import aws_client

FINAL_STATE_TIMEOUT_S = 240.0
POLL_INTERVAL_S = 0.5


def new_job_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@dataclass
class StackClient:
    env: dict[str, str]
    folder: Path

    @property
    def video_bucket(self) -> str:
        return self.env["VIDEO_BUCKET_NAME"]

    @property
    def result_bucket(self) -> str:
        return self.env["RESULT_BUCKET_NAME"]

    def s3(self) -> Any:
        return aws_client(self.env, "s3")

    def sqs(self) -> Any:
        return aws_client(self.env, "sqs")

    def prefect(self) -> SyncPrefectClient:
        return SyncPrefectClient(api=self.env["PREFECT_API_URL"])

    def upload(self, path: Path, key: str) -> dict[str, Any]:
        self.s3().upload_file(str(path), self.video_bucket, key)
        return dict(self.s3().head_object(Bucket=self.video_bucket, Key=key))

    def job(self, job_id: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.env['BACKEND_BASE_URL']}/internal/jobs/{job_id}", timeout=5)
        return None if response.status_code == httpx.codes.NOT_FOUND else response.json()

    def wait_for_callbacks(
        self, job_id: str, count: int = 1, timeout_s: float = FINAL_STATE_TIMEOUT_S
    ) -> dict[str, Any]:
        """Wait until the backend has received `count` callbacks for the job."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job and len(job["callbacks"]) >= count:
                return job
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"job {job_id}: fewer than {count} callbacks in {timeout_s} s")

    def result(self, key: str) -> dict[str, Any]:
        body = self.s3().get_object(Bucket=self.result_bucket, Key=key)["Body"].read()
        return dict(json.loads(body))

    def result_text(self, key: str) -> str:
        """A text object of the result bucket (subtitles), decoded as UTF-8."""
        body: bytes = self.s3().get_object(Bucket=self.result_bucket, Key=key)["Body"].read()
        return body.decode()

    def fake(self, name: str) -> str:
        return {
            "clova": self.env["FAKE_CLOVA_URL"],
            "clova-speech": self.env["FAKE_CLOVA_SPEECH_URL"],
            "anthropic": self.env["FAKE_ANTHROPIC_URL"],
            "backend": self.env["BACKEND_BASE_URL"],
        }[name]

    def stats(self, name: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.fake(name)}/__admin/stats", timeout=5).json())

    def inject(self, name: str, *faults: dict[str, Any]) -> None:
        httpx.post(
            f"{self.fake(name)}/__admin/faults", json={"faults": list(faults)}, timeout=5
        ).raise_for_status()

    def configure(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change part of the fake's runtime config (``reset`` restores its start config)."""
        response = httpx.post(f"{self.fake(name)}/__admin/config", json=changes, timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def reset(self, name: str) -> None:
        """Drop the fake's pending faults, counters and records."""
        httpx.post(f"{self.fake(name)}/__admin/reset", timeout=5).raise_for_status()

    def flow_runs_named(self, name: str) -> list[FlowRun]:
        with self.prefect() as client:
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def warm_worker_pid(self) -> int | None:
        """The pid of this stack's warm worker (from /proc: command line and API URL)."""
        api = f"PREFECT_API_URL={self.env['PREFECT_API_URL']}".encode()
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in cmdline and b"warm" in cmdline and api in environ:
                return int(entry.name)
        return None

    def wait_for_empty_queue(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.queue_depth(self.env["SQS_QUEUE_URL"]) == 0:
                return
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError("the ingest queue did not drain")


def wait_for_run_state(
    stack: StackClient, name: str, state: StateType, timeout_s: float = 60
) -> list[FlowRun]:
    """Wait until the flow runs with this name exist and are all in `state`."""
    deadline = time.monotonic() + timeout_s
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = stack.flow_runs_named(name)
        if runs and all(run.state_type == state for run in runs):
            return runs
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"{name}: runs {[(r.id, r.state_type) for r in runs]}, wanted {state}")

"""End to end: uploads through moto S3 → SQS → sensor → Prefect server → worker → callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.states import AwaitingRetry

from local_stack.sample_video import make_corrupt_video, make_tone_video, make_video_without_audio
from local_stack.stack import REPO_ROOT
from tests.e2e.stack_client import StackClient, new_job_id, wait_for_run_state

pytestmark = pytest.mark.e2e
CHUNK_SECONDS = 55.0


def test_upload_ends_in_done_callback_result_json_and_deleted_message(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    video = make_tone_video(tmp_path / "talk.mp4", seconds=70)
    stack.inject("clova", {"status": 500})  # one chunk is retried alone, and counted
    stack.upload(video, f"videos/user-1/{job_id}.mp4")

    job = stack.wait_for_callbacks(job_id)
    final = job["final"]

    assert final["status"] == "DONE", final
    # Signed (the stack's backend verifies it) and recorded in the outbox before sending.
    headers = job["callbacks"][0]["headers"]
    assert headers["X-Signature"].startswith("v1=")
    outbox_record = stack.result(f"results/user-1/{job_id}.callback.json")
    assert outbox_record["delivery_id"] == headers["X-Delivery-Id"]
    assert outbox_record["delivered_at"] is not None
    assert final["result_s3_key"] == f"results/user-1/{job_id}.json"
    assert final["s3_key"] == f"videos/user-1/{job_id}.mp4"
    assert final["meta"]["stt_engine"] == "clova-csr"
    result = stack.result(final["result_s3_key"])
    assert result["schema_version"] == "1.3"
    assert result["meta"]["gaps"] == [] and result["meta"]["flags"] == []
    assert result["summary"]["key_points"] and result["summary"]["usage"]["llm_calls"] >= 1
    assert result["transcript_text"] == final["transcript"] != ""
    assert result["summary"]["text"] == final["summary"] != ""
    # 70 s of audio is two CLOVA requests: CSR refuses more than 60 s.
    # Subtitles beside the result, named in the callback's meta.
    srt = stack.s3().get_object(Bucket=stack.result_bucket, Key=final["meta"]["srt_s3_key"])
    vtt = stack.s3().get_object(Bucket=stack.result_bucket, Key=final["meta"]["vtt_s3_key"])
    assert final["meta"]["srt_s3_key"] == f"results/user-1/{job_id}.srt"
    assert srt["Body"].read().decode().startswith("1\n00:00:00,000 --> ")
    assert vtt["Body"].read().decode().startswith("WEBVTT")
    starts = [segment["start_s"] for segment in result["transcript"]["segments"]]
    assert starts == pytest.approx([0.0, CHUNK_SECONDS], abs=0.5)
    assert stack.stats("clova")["requests"] == 3
    usage = result["meta"]["usage"]
    assert usage["stt_requests"] == 2 and usage["audio_seconds_to_stt"] == pytest.approx(70, abs=1)
    assert usage["task_retries"] == 1
    assert usage["llm_output_tokens"] == result["summary"]["usage"]["output_tokens"] > 0
    stack.wait_for_empty_queue()
    [run] = wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)
    assert {"user:user-1", "stt:clova-csr", "llm:claude"} <= set(run.tags)
    with stack.prefect() as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    kinds = {artifact.type: artifact for artifact in artifacts}
    assert final["summary"] in str(kinds["markdown"].data)
    ledger = {row["item"]: row["value"] for row in json.loads(str(kinds["table"].data))}
    assert ledger["task retries"] == 1 and ledger["STT requests"] == 2
    # Intermediate audio is removed once the result is stored.
    work = stack.s3().list_objects_v2(Bucket=stack.result_bucket, Prefix=f"work/user-1/{job_id}/")
    assert work.get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("make_video", "reason"),
    [
        (make_corrupt_video, "not a decodable media file"),
        (lambda path: make_video_without_audio(path, seconds=3), "no audio stream"),
    ],
    ids=["corrupt", "no-audio"],
)
def test_unusable_upload_ends_in_failed_callback_with_ffmpeg_failed(
    stack: StackClient, tmp_path: Path, make_video, reason: str
) -> None:
    job_id = new_job_id()
    stack.upload(make_video(tmp_path / "bad.mp4"), f"videos/user-2/{job_id}.mp4")

    final = stack.wait_for_callbacks(job_id)["final"]

    assert final["status"] == "FAILED"
    assert final["error_code"] == "FFMPEG_FAILED"
    assert reason in final["error_message"]
    wait_for_run_state(stack, f"job-{job_id}", StateType.FAILED)
    assert stack.stats("clova")["requests"] == 0


def test_same_s3_event_delivered_twice_starts_one_flow_run(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    key = f"videos/user-3/{job_id}.mp4"
    head = stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), key)
    # The notification moto already sent, delivered again twice (as SQS may).
    duplicate = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": stack.env["AWS_REGION"],
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": stack.video_bucket},
                    "object": {
                        "key": key.replace("/", "%2F"),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                    },
                },
            }
        ]
    }
    for _ in range(2):
        stack.sqs().send_message(
            QueueUrl=stack.env["SQS_QUEUE_URL"], MessageBody=json.dumps(duplicate)
        )

    job = stack.wait_for_callbacks(job_id)
    stack.wait_for_empty_queue()

    assert job["final"]["status"] == "DONE"
    assert len(stack.flow_runs_named(f"job-{job_id}")) == 1
    assert len(stack.wait_for_callbacks(job_id)["callbacks"]) == 1


def test_retry_of_a_run_that_failed_at_the_llm_does_not_call_stt_again(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    stack.inject("anthropic", {"status": 400})  # not retryable: the run fails at once
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/user-4/{job_id}.mp4")

    failed = stack.wait_for_callbacks(job_id)["final"]
    assert failed["status"] == "FAILED"
    assert failed["error_code"] == "LLM_BAD_RESPONSE"
    [run] = wait_for_run_state(stack, f"job-{job_id}", StateType.FAILED)
    stt_calls = stack.stats("clova")["requests"]
    llm_calls = stack.stats("anthropic")["requests"]
    assert stt_calls == 1

    # What the UI's "Retry" does: the same run goes back to Scheduled.
    with stack.prefect() as client:
        client.set_flow_run_state(run.id, AwaitingRetry(message="Retry from the UI"), force=True)

    job = stack.wait_for_callbacks(job_id, count=2)
    assert job["state"] == "DONE"
    assert [callback["body"]["status"] for callback in job["callbacks"]] == ["FAILED", "DONE"]
    assert stack.stats("clova")["requests"] == stt_calls
    assert stack.stats("anthropic")["requests"] == llm_calls + 1
    wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)


def test_no_secret_reaches_logs_parameters_or_stored_objects(stack: StackClient) -> None:
    """Runs after the others in this module: everything they wrote is scanned."""
    secrets = [
        stack.env[name]
        for name in (
            "CLOVA_API_KEY",
            "CLAUDE_API_KEY",
            "BACKEND_INTERNAL_TOKEN",
            "CALLBACK_SIGNING_SECRET",
        )
    ]
    with stack.prefect() as client:
        runs = client.read_flow_runs(limit=200)
    assert runs, "the other tests made flow runs to scan"
    written = [json.dumps([run.parameters for run in runs])]
    written += [
        path.read_text(errors="replace")
        for path in (stack.folder / "logs").glob("*.log")
        if not path.name.startswith(("fake-", "backend"))
    ]
    s3 = stack.s3()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.result_bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=stack.result_bucket, Key=item["Key"])["Body"].read()
            written.append(body.decode(errors="replace"))
    for secret in secrets:
        assert not any(secret in text for text in written)


def test_backend_down_for_the_whole_retry_window_then_resend_delivers_without_rerun(
    stack: StackClient, tmp_path: Path
) -> None:
    job_id = new_job_id()
    attempts = 1 + int(stack.env.get("MAX_RETRIES", "3"))
    stack.inject(
        "backend", {"status": 503, "count": attempts, "path": f"/internal/jobs/{job_id}/complete"}
    )
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/user-5/{job_id}.mp4")

    wait_for_run_state(stack, f"job-{job_id}", StateType.FAILED, timeout_s=120)
    refused = stack.job(job_id)
    assert refused is not None
    assert refused["state"] is None  # every attempt was refused
    assert len(refused["rejected"]) == attempts  # and no FAILED was sent after
    stt_calls = stack.stats("clova")["requests"]

    resend = subprocess.run(
        [sys.executable, "-m", "flows.resend_callbacks"],
        cwd=REPO_ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resend.returncode == 0, resend.stderr[-2000:]

    job = stack.wait_for_callbacks(job_id)
    assert job["state"] == "DONE"
    assert job["final"]["result_s3_key"] == f"results/user-5/{job_id}.json"
    assert stack.stats("clova")["requests"] == stt_calls  # nothing ran again

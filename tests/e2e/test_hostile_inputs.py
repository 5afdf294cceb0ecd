"""Hostile input, end to end: every case ends in its defined outcome, nothing is lost.

Outcomes: a FAILED callback with a defined code, a DONE callback, the message in the
dead-letter queue, or the message deleted on purpose with a log line saying why.

Message and upload cases are submitted together and awaited in one fixture; cases that
inject faults into the fake CLOVA/Anthropic servers or the backend run one at a time,
since a fake's fault queue is shared by every request it serves.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_stack.sample_video import (
    make_corrupt_video,
    make_silent_video,
    make_tone_video,
)
from tests.e2e.stack_client import StackClient, new_job_id

pytestmark = pytest.mark.e2e
OUTCOME_TIMEOUT_S = 180.0


def s3_event(
    bucket: str, key: str, *, encoded_key: str | None = None, etag: str = "e"
) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "ap-northeast-2",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket},
            "object": {"key": encoded_key or key.replace("/", "%2F"), "size": 1, "eTag": etag},
        },
    }


def sensor_lines(stack: StackClient) -> list[dict[str, Any]]:
    lines = []
    for line in (stack.folder / "logs" / "sensor.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def wait_for_sensor_line(stack: StackClient, **fields: str) -> dict[str, Any]:
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in sensor_lines(stack):
            if all(line.get(name) == value for name, value in fields.items()):
                return line
        time.sleep(0.5)
    raise AssertionError(f"no sensor log line with {fields}")


def long_duration_header_video(path: Path) -> Path:
    """A valid short mp4 whose movie header claims about 49 days."""
    make_tone_video(path, seconds=2)
    data = bytearray(path.read_bytes())
    mvhd = data.index(b"mvhd")
    timescale_at = mvhd + 4 + 4 + 4 + 4  # version/flags, creation, modification
    struct.pack_into(">II", data, timescale_at, 1000, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    return path


def hls_playlist(path: Path) -> Path:
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n/etc/hostname\n#EXT-X-ENDLIST\n"
    )
    return path


def truncated_mp4(path: Path) -> Path:
    make_tone_video(path, seconds=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@dataclass
class Submitted:
    job_ids: dict[str, str]
    message_ids: dict[str, str]
    markers: dict[str, str]


FAILED_UPLOADS: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "zero-byte": (
        lambda path: (path.write_bytes(b""), path)[1],
        "FFMPEG_FAILED",
        "not a decodable media file",
    ),
    "truncated-mp4": (truncated_mp4, "FFMPEG_FAILED", "not a decodable media file"),
    "text-named-mp4": (
        lambda path: (path.write_text("hello, not a video\n"), path)[1],
        "FFMPEG_FAILED",
        "not a decodable media file",
    ),
    "corrupt-bytes": (make_corrupt_video, "FFMPEG_FAILED", "not a decodable media file"),
    "long-duration-header": (long_duration_header_video, "FFMPEG_FAILED", "over the limit"),
    "hls-playlist-named-mp4": (hls_playlist, "FFMPEG_FAILED", "not a decodable media file"),
}


@pytest.fixture(scope="module")
def submitted(stack: StackClient, tmp_path_factory: pytest.TempPathFactory) -> Submitted:
    """Submit every message/upload case at once; return when all reached their outcome."""
    folder = tmp_path_factory.mktemp("hostile")
    bucket, queue = stack.video_bucket, stack.env["SQS_QUEUE_URL"]
    sqs = stack.sqs()
    jobs: dict[str, str] = {}
    messages: dict[str, str] = {}
    markers: dict[str, str] = {}

    def send(case: str, body: str) -> None:
        messages[case] = sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]

    for case, (make, _, _) in FAILED_UPLOADS.items():
        jobs[case] = new_job_id()
        stack.upload(make(folder / f"{case}.mp4"), f"videos/hostile/{jobs[case]}.mp4")

    jobs["silent-audio"] = new_job_id()
    stack.upload(
        make_silent_video(folder / "silent.mp4", seconds=3),
        f"videos/hostile/{jobs['silent-audio']}.mp4",
    )
    jobs["unicode-key"] = f"영상-{uuid.uuid4().hex[:8]}"
    stack.upload(
        make_tone_video(folder / "unicode.mp4", seconds=2),
        f"videos/사용자/{jobs['unicode-key']}.mp4",
    )

    # Envelopes and multi-record messages name objects that exist; their own uploads'
    # notifications map onto the same runs (same idempotency key).
    clip = make_tone_video(folder / "clip.mp4", seconds=2)
    etags: dict[str, str] = {}
    for case in ("sns-envelope", "eventbridge", "multi-record-1", "multi-record-2"):
        jobs[case] = new_job_id()
        head = stack.upload(clip, f"videos/hostile/{jobs[case]}.mp4")
        etags[case] = head["ETag"].strip('"')

    def event_of(case: str) -> dict[str, Any]:
        return s3_event(bucket, f"videos/hostile/{jobs[case]}.mp4", etag=etags[case])

    inner = json.dumps({"Records": [event_of("sns-envelope")]})
    send(
        "sns-envelope",
        json.dumps(
            {
                "Type": "Notification",
                "MessageId": "m",
                "TopicArn": "arn:aws:sns:x",
                "Message": inner,
            }
        ),
    )
    send(
        "eventbridge",
        json.dumps(
            {
                "detail-type": "Object Created",
                "source": "aws.s3",
                "time": "2026-01-01T00:00:00Z",
                "detail": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": f"videos/hostile/{jobs['eventbridge']}.mp4",
                        "size": 1,
                        "etag": etags["eventbridge"],
                    },
                },
            }
        ),
    )
    send(
        "multi-record",
        json.dumps({"Records": [event_of("multi-record-1"), event_of("multi-record-2")]}),
    )

    jobs["deleted-before-download"] = new_job_id()
    send(
        "deleted-before-download",
        json.dumps(
            {"Records": [s3_event(bucket, f"videos/hostile/{jobs['deleted-before-download']}.mp4")]}
        ),
    )

    markers["non-json"] = f"not json {uuid.uuid4().hex}"
    send("non-json", markers["non-json"])
    send(
        "test-event",
        json.dumps(
            {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Time": "t",
                "Bucket": bucket,
                "RequestId": "r",
                "HostId": "h",
            }
        ),
    )
    send(
        "wrong-bucket",
        json.dumps({"Records": [s3_event("someone-elses-bucket", "videos/hostile/x.mp4")]}),
    )
    send("outside-prefix", json.dumps({"Records": [s3_event(bucket, "uploads/hostile/x.mp4")]}))
    send("dot-dot", json.dumps({"Records": [s3_event(bucket, "videos/../../etc/passwd.mp4")]}))
    send(
        "percent-2f",
        json.dumps(
            {
                "Records": [
                    s3_event(bucket, "", encoded_key="videos%2Fhostile%252F..%252F..%252Fx.mp4")
                ]
            }
        ),
    )
    send(
        "plus-in-key",
        json.dumps(
            {"Records": [s3_event(bucket, "", encoded_key="videos%2Fhostile%2Fmy+clip.mp4")]}
        ),
    )
    send(
        "removed-object",
        json.dumps(
            {
                "Records": [
                    {
                        **s3_event(bucket, "videos/hostile/gone.mp4"),
                        "eventName": "ObjectRemoved:Delete",
                    }
                ]
            }
        ),
    )

    for job_id in jobs.values():
        stack.wait_for_callbacks(job_id, timeout_s=OUTCOME_TIMEOUT_S)
    stack.wait_for_empty_queue(timeout_s=OUTCOME_TIMEOUT_S)
    return Submitted(job_ids=jobs, message_ids=messages, markers=markers)


@pytest.mark.parametrize("case", sorted(FAILED_UPLOADS))
def test_unusable_uploads_fail_with_a_defined_code(stack, submitted, case):
    _, code, reason = FAILED_UPLOADS[case]
    job = stack.job(submitted.job_ids[case])
    assert job["state"] == "FAILED"
    assert job["final"]["error_code"] == code
    assert reason in job["final"]["error_message"]
    assert len(job["callbacks"]) == 1


def test_silent_audio_ends_in_a_clear_failure_not_an_invented_summary(stack, submitted):
    final = stack.job(submitted.job_ids["silent-audio"])["final"]
    assert final["status"] == "FAILED"
    assert final["error_code"] == "STT_BAD_RESPONSE"


def test_object_deleted_before_download_is_s3_download_failed(stack, submitted):
    final = stack.job(submitted.job_ids["deleted-before-download"])["final"]
    assert final["error_code"] == "S3_DOWNLOAD_FAILED"
    assert "404" in final["error_message"]


def test_unicode_key_is_processed(stack, submitted):
    final = stack.job(submitted.job_ids["unicode-key"])["final"]
    assert final["status"] == "DONE"
    assert final["s3_key"] == f"videos/사용자/{submitted.job_ids['unicode-key']}.mp4"


@pytest.mark.parametrize(
    ("case", "jobs"),
    [
        ("sns-envelope", ["sns-envelope"]),
        ("eventbridge", ["eventbridge"]),
        ("multi-record", ["multi-record-1", "multi-record-2"]),
    ],
)
def test_envelopes_and_multi_record_messages_start_each_video_once(stack, submitted, case, jobs):
    for name in jobs:
        job_id = submitted.job_ids[name]
        wait_for_sensor_line(
            stack, stage="RUN_CREATED", job_id=job_id, message_id=submitted.message_ids[case]
        )
        assert stack.job(job_id)["state"] == "DONE"
        assert len(stack.flow_runs_named(f"job-{job_id}")) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("test-event", None),
        ("wrong-bucket", "not the video bucket"),
        ("outside-prefix", "outside the video key prefix"),
        ("dot-dot", "key is not videos/"),
        ("percent-2f", "key is not videos/"),
        ("plus-in-key", "key is not videos/"),
        ("removed-object", "not an object creation"),
    ],
)
def test_messages_not_ours_are_deleted_with_a_log_line(stack, submitted, case, reason):
    line = wait_for_sensor_line(
        stack, stage="MESSAGE_SKIPPED", message_id=submitted.message_ids[case]
    )
    if reason:
        assert reason in line["reason"]


def test_non_json_body_reaches_the_dead_letter_queue_with_the_reason_logged(stack, submitted):
    line = wait_for_sensor_line(
        stack, stage="MESSAGE_REJECTED", message_id=submitted.message_ids["non-json"]
    )
    assert "not JSON" in line["reason"]
    sqs, marker = stack.sqs(), submitted.markers["non-json"]
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while time.monotonic() < deadline:
        received = sqs.receive_message(
            QueueUrl=stack.env["SQS_DLQ_URL"], MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        if any(message["Body"] == marker for message in received.get("Messages", [])):
            return
        time.sleep(1)
    raise AssertionError("the poison message never reached the dead-letter queue")


# --- faults, one case at a time -----------------------------------------------------

FAULT_CASES: list[tuple[str, str, list[dict[str, Any]], str, str | None]] = [
    # (case, fake, faults, final status, error code)
    ("clova-401", "clova", [{"status": 401}], "FAILED", "STT_BAD_RESPONSE"),
    ("clova-429-then-ok", "clova", [{"status": 429}], "DONE", None),
    ("clova-500-always", "clova", [{"status": 500, "count": 4}], "FAILED", "STT_BAD_RESPONSE"),
    (
        "clova-timeout",
        "clova",
        [{"kind": "timeout", "seconds": 6, "count": 4}],
        "FAILED",
        "STT_TIMEOUT",
    ),
    ("clova-malformed", "clova", [{"kind": "malformed", "count": 4}], "FAILED", "STT_BAD_RESPONSE"),
    ("claude-401", "anthropic", [{"status": 401}], "FAILED", "LLM_BAD_RESPONSE"),
    ("claude-429-retry-after", "anthropic", [{"status": 429}], "DONE", None),
    ("claude-529-then-ok", "anthropic", [{"status": 529}], "DONE", None),
    (
        "claude-timeout",
        "anthropic",
        [{"kind": "timeout", "seconds": 6, "count": 4}],
        "FAILED",
        "LLM_TIMEOUT",
    ),
    (
        "claude-max-tokens",
        "anthropic",
        [{"kind": "max_tokens", "count": 4}],
        "FAILED",
        "LLM_BAD_RESPONSE",
    ),
    ("callback-500-then-ok", "backend", [{"status": 500}], "DONE", None),
]


@pytest.mark.parametrize(
    ("case", "fake", "faults", "status", "code"), FAULT_CASES, ids=[case[0] for case in FAULT_CASES]
)
def test_faults_of_the_services_end_in_their_defined_outcome(
    stack, submitted, tmp_path, case, fake, faults, status, code
):
    job_id = new_job_id()
    if fake == "backend":
        faults = [{**fault, "path": f"/internal/jobs/{job_id}/complete"} for fault in faults]
    stack.inject(fake, *faults)
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/faults/{job_id}.mp4")

    job = stack.wait_for_callbacks(job_id, timeout_s=OUTCOME_TIMEOUT_S)

    assert job["final"]["status"] == status, job["final"]
    if code:
        assert job["final"]["error_code"] == code


def test_callback_refused_with_400_is_not_retried_and_stays_in_the_outbox(stack, tmp_path):
    job_id = new_job_id()
    stack.inject("backend", {"status": 400, "path": f"/internal/jobs/{job_id}/complete"})
    stack.upload(make_tone_video(tmp_path / "clip.mp4", seconds=3), f"videos/faults/{job_id}.mp4")

    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while time.monotonic() < deadline and not (stack.job(job_id) or {}).get("rejected"):
        time.sleep(0.5)
    time.sleep(3)  # a retry would arrive within this
    job = stack.job(job_id)
    assert job["state"] is None and len(job["rejected"]) == 1
    record = stack.result(f"results/faults/{job_id}.callback.json")
    assert record["body"]["status"] == "DONE" and record["delivered_at"] is None

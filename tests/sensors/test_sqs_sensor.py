"""The sensor loop against real SQS (moto server over HTTP).

Prefect's client is replaced by a recorder of `create_flow_run_from_deployment` calls;
the real sensor → Prefect path is covered by the end-to-end tests.
"""

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import pytest

from flows.runs import Routes
from sensors.sqs_sensor import SqsSensor
from video_processor.config import Settings
from video_processor.dead_letters import dead_letter_queue_url

BUCKET = "videos-in"


@dataclass
class RecordingPrefect:
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_with: Exception | None = None
    fail_after: int | None = None
    seconds_per_run: float = 0.0
    first_run: threading.Event = field(default_factory=threading.Event)

    def create_flow_run_from_deployment(self, deployment_id, **kwargs):
        if self.fail_with and (self.fail_after is None or len(self.calls) >= self.fail_after):
            raise self.fail_with
        self.first_run.set()
        time.sleep(self.seconds_per_run)
        self.calls.append({**kwargs, "deployment_id": deployment_id})
        return type("FlowRun", (), {"id": uuid.uuid4()})()


@pytest.fixture
def queue(sqs_client) -> str:
    dlq = sqs_client.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url: str = sqs_client.create_queue(
        QueueName=f"q-{uuid.uuid4().hex[:8]}",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
        },
    )["QueueUrl"]
    return url


def make_sensor(
    sqs_client, queue: str, prefect: RecordingPrefect, visibility_s: int = 30
) -> SqsSensor:
    settings = Settings(
        sqs_queue_url=queue,
        video_bucket_name=BUCKET,
        sqs_wait_time_seconds=0,
        sqs_visibility_timeout_seconds=visibility_s,
    )
    return SqsSensor(
        settings=settings,
        sqs=sqs_client,
        prefect=prefect,  # type: ignore[arg-type]
        routes=Routes(warm=uuid.uuid4()),
    )


def event(*keys: str, bucket: str = BUCKET) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key, "size": 1, "eTag": "e"},
                    },
                }
                for key in keys
            ]
        }
    )


def visible_messages(sqs_client, queue: str) -> int:
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_each_video_record_starts_a_named_idempotent_run_then_the_message_is_deleted(
    sqs_client, queue
):
    prefect = RecordingPrefect()
    sqs_client.send_message(
        QueueUrl=queue, MessageBody=event("videos%2F7%2F42.mp4", "videos/7/43.mov")
    )
    sensor = make_sensor(sqs_client, queue, prefect)

    assert sensor.poll_once() == 1

    assert [call["name"] for call in prefect.calls] == ["job-42", "job-43"]
    assert prefect.calls[0]["parameters"]["job"]["key"] == "videos/7/42.mp4"
    assert prefect.calls[0]["idempotency_key"].startswith("video:")
    assert prefect.calls[0]["idempotency_key"] != prefect.calls[1]["idempotency_key"]
    assert visible_messages(sqs_client, queue) == 0


def test_redelivered_event_asks_for_the_same_run(sqs_client, queue):
    prefect = RecordingPrefect()
    sensor = make_sensor(sqs_client, queue, prefect)
    for _ in range(2):
        sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/42.mp4"))
        sensor.poll_once()
    assert len({call["idempotency_key"] for call in prefect.calls}) == 1


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}),
        event("videos/7/42.mp4", bucket="someone-elses-bucket"),
        event("uploads/7/42.mp4"),
        event("videos/7/sub/42.mp4"),
        event("videos%2F..%2F..%2Fetc%2Fpasswd"),
    ],
    ids=["test-event", "wrong-bucket", "outside-prefix", "bad-layout", "dot-dot"],
)
def test_messages_not_ours_are_deleted_without_a_run(sqs_client, queue, body):
    prefect = RecordingPrefect()
    sqs_client.send_message(QueueUrl=queue, MessageBody=body)
    sensor = make_sensor(sqs_client, queue, prefect)
    sensor.poll_once()
    assert prefect.calls == []
    assert visible_messages(sqs_client, queue) == 0
    assert sensor.counters.deleted == 1


@pytest.mark.parametrize(
    "key",
    ["videos/7/42.mp4\n", "videos/7/42.mp4%0A", "videos/7/42.mp4%09", "videos/7/4%002.mp4"],
    ids=["newline", "encoded-newline", "tab", "nul"],
)
def test_a_key_with_a_control_character_is_skipped_with_a_log(sqs_client, queue, caplog, key):
    caplog.set_level(logging.INFO)
    prefect = RecordingPrefect()
    sqs_client.send_message(QueueUrl=queue, MessageBody=event(key))
    sensor = make_sensor(sqs_client, queue, prefect)

    sensor.poll_once()

    assert prefect.calls == []
    skips = [r for r in caplog.records if getattr(r, "stage", None) == "MESSAGE_SKIPPED"]
    assert [r.reason for r in skips] == [
        f"s3://{BUCKET}/{unquote_plus(key)}: key is not videos/{{user_id}}/{{job_id}}.{{ext}}"
    ]
    assert visible_messages(sqs_client, queue) == 0


def test_a_malformed_record_goes_alone_to_the_dlq_and_the_valid_one_runs(sqs_client, queue, caplog):
    prefect = RecordingPrefect()
    document = json.loads(event("videos/7/42.mp4", "videos/7/43.mp4"))
    document["Records"][1]["eventTime"] = "not a time"
    sent = sqs_client.send_message(QueueUrl=queue, MessageBody=json.dumps(document))
    sensor = make_sensor(sqs_client, queue, prefect)

    sensor.poll_once()

    assert [call["name"] for call in prefect.calls] == ["job-42"]
    assert visible_messages(sqs_client, queue) == 0
    [rejected] = [r for r in caplog.records if getattr(r, "stage", None) == "MESSAGE_REJECTED"]
    assert rejected.message_id == sent["MessageId"]
    assert rejected.reason.startswith("record 1: malformed S3 record: eventTime")
    dlq = dead_letter_queue_url(sqs_client, queue)
    [parked] = sqs_client.receive_message(
        QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert json.loads(parked["Body"]) == {"Records": [document["Records"][1]]}
    assert parked["MessageAttributes"]["OriginMessageId"]["StringValue"] == sent["MessageId"]
    assert rejected.dead_letter_message_id == parked["MessageId"]


def test_unparseable_message_is_kept_for_the_dead_letter_queue(sqs_client, queue, caplog):
    prefect = RecordingPrefect()
    sqs_client.send_message(QueueUrl=queue, MessageBody="definitely not json")
    sensor = make_sensor(sqs_client, queue, prefect)
    sensor.poll_once()
    assert sensor.counters.rejected == 1 and sensor.counters.deleted == 0
    assert any("not JSON" in getattr(record, "reason", "") for record in caplog.records)
    # Released at once: the next receive gets it again, and the redrive policy then moves it.
    sensor.poll_once()
    sensor.poll_once()
    assert sensor.counters.rejected == 2
    assert visible_messages(sqs_client, queue) == 0


def test_message_stays_when_the_run_cannot_be_created(sqs_client, queue):
    prefect = RecordingPrefect(fail_with=OSError("prefect api down"))
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/42.mp4"))
    sensor = make_sensor(sqs_client, queue, prefect)
    with pytest.raises(OSError):
        sensor.poll_once()
    assert visible_messages(sqs_client, queue) == 1


def test_a_slow_hand_off_keeps_the_rest_of_the_batch_invisible(sqs_client, queue):
    prefect = RecordingPrefect(seconds_per_run=0.5)
    for job in range(6):
        sqs_client.send_message(QueueUrl=queue, MessageBody=event(f"videos/7/{job}.mp4"))
    sensor = make_sensor(sqs_client, queue, prefect, visibility_s=2)
    stolen: list[str] = []
    done = threading.Event()

    def competing_consumer() -> None:
        prefect.first_run.wait(timeout=30)  # the sensor holds the batch from here on
        while not done.is_set():
            received = sqs_client.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0
            )
            stolen.extend(message["MessageId"] for message in received.get("Messages", []))
            time.sleep(0.2)

    thief = threading.Thread(target=competing_consumer)
    thief.start()
    try:
        assert sensor.poll_once() == 6
    finally:
        done.set()
        thief.join()
    assert len(prefect.calls) == 6
    assert stolen == []  # 3 s of hand-off, 2 s of visibility: extended, never exposed
    assert visible_messages(sqs_client, queue) == 0


def test_messages_whose_runs_exist_are_deleted_even_when_a_later_one_fails(sqs_client, queue):
    prefect = RecordingPrefect(fail_with=OSError("prefect api down"), fail_after=1)
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/1.mp4"))
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/2.mp4"))
    sensor = make_sensor(sqs_client, queue, prefect)
    with pytest.raises(OSError):
        while sensor.counters.received < 2:
            sensor.poll_once()
    assert len(prefect.calls) == 1
    assert sensor.counters.deleted == 1
    assert visible_messages(sqs_client, queue) == 1


def test_small_uploads_go_to_the_warm_deployment_and_large_ones_to_the_isolated_one(
    sqs_client, queue
):
    prefect = RecordingPrefect()
    body = json.loads(event("videos/7/small.mp4", "videos/7/large.mp4"))
    body["Records"][1]["s3"]["object"]["size"] = 10**10
    sqs_client.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    sensor = make_sensor(sqs_client, queue, prefect)
    warm, isolated = uuid.uuid4(), uuid.uuid4()
    sensor.routes = Routes(warm=warm, isolated=isolated, max_warm_bytes=10**6)

    sensor.poll_once()

    assert [(call["name"], call["deployment_id"]) for call in prefect.calls] == [
        ("job-small", warm),
        ("job-large", isolated),
    ]
    assert "route:isolated" in prefect.calls[1]["tags"]

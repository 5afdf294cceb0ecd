"""Finding the dead-letter queue and re-driving its valid S3 events (real SQS: moto server)."""

import json
import uuid

from video_processor.dead_letters import dead_letter_queue_url, park_records, redrive


def queues(sqs_client) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs_client.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue = sqs_client.create_queue(
        QueueName=f"q-{suffix}",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
        },
    )["QueueUrl"]
    return queue, dlq


def s3_event(key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": key, "eTag": "e"}},
                }
            ]
        }
    )


def bodies(sqs_client, queue: str) -> list[str]:
    found = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return sorted(message["Body"] for message in found.get("Messages", []))


def test_the_dead_letter_queue_is_the_one_the_redrive_policy_names(sqs_client):
    queue, dlq = queues(sqs_client)
    assert dead_letter_queue_url(sqs_client, queue) == dlq
    assert dead_letter_queue_url(sqs_client, dlq) is None  # no policy of its own


def test_valid_events_go_back_and_the_rest_stays_visible(sqs_client):
    queue, dlq = queues(sqs_client)
    valid = sqs_client.send_message(QueueUrl=dlq, MessageBody=s3_event("videos/1/2.mp4"))
    junk = sqs_client.send_message(QueueUrl=dlq, MessageBody="not json at all")
    test_event = sqs_client.send_message(
        QueueUrl=dlq, MessageBody=json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"})
    )
    parked = park_records(sqs_client, dlq, [{"eventName": "ObjectCreated:Put"}], "origin-1")

    report = redrive(sqs_client, queue, dlq)

    assert report.redriven == [valid["MessageId"]]
    assert set(report.kept) == {junk["MessageId"], test_event["MessageId"], parked}
    assert "not JSON" in report.kept[junk["MessageId"]]
    assert report.kept[test_event["MessageId"]] == "announces no created object"
    assert bodies(sqs_client, queue) == [s3_event("videos/1/2.mp4")]
    assert len(bodies(sqs_client, dlq)) == 3  # kept, and visible again at once


def test_a_dry_run_moves_nothing(sqs_client):
    queue, dlq = queues(sqs_client)
    valid = sqs_client.send_message(QueueUrl=dlq, MessageBody=s3_event("videos/1/2.mp4"))

    report = redrive(sqs_client, queue, dlq, dry_run=True)

    assert report.dry_run and report.redriven == [valid["MessageId"]]
    assert bodies(sqs_client, queue) == []
    assert bodies(sqs_client, dlq) == [s3_event("videos/1/2.mp4")]

"""The ingest queue's dead-letter queue: finding it, parking records in it, re-driving from it.

The dead-letter queue is the one the ingest queue's ``RedrivePolicy`` names, so nothing
but the queue URL is configured. Re-driving reads every message of the dead-letter queue
once: a message that parses as an S3 event announcing at least one created object goes
back to the ingest queue (then leaves the dead-letter queue); anything else stays where
it is, visible again, for a person to look at. A dry run moves nothing.

SQS's own redrive (``StartMessageMoveTask``, the console's "Start DLQ redrive") moves every
message, junk included, which then bounces back after ``maxReceiveCount`` receives; this
moves only what the sensor can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from video_processor.events import MessageParseError, parse_message_body
from video_processor.logs import get_logger

logger = get_logger("dead_letters")

MAX_BATCH = 10
# How long a scanned message that stays is hidden, so that one pass never sees it twice.
SCAN_VISIBILITY_S = 300
SCAN_WAIT_S = 1


def dead_letter_queue_url(sqs: Any, queue_url: str) -> str | None:
    """The URL of the queue's dead-letter queue (from its RedrivePolicy), None without one."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    policy = attributes.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        return None
    arn = str(json.loads(policy)["deadLetterTargetArn"])
    _, _, _, _, account, name = arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def park_records(sqs: Any, dlq_url: str, records: list[Any], origin_message_id: str) -> str:
    """Send records on their own, as one S3 notification, to the dead-letter queue."""
    sent = sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps({"Records": records}, ensure_ascii=False),
        MessageAttributes={
            "OriginMessageId": {"DataType": "String", "StringValue": origin_message_id}
        },
    )
    return str(sent["MessageId"])


@dataclass
class RedriveReport:
    """What one pass did (or, in a dry run, would do), by message id."""

    redriven: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


def redrive(sqs: Any, queue_url: str, dlq_url: str, *, dry_run: bool = False) -> RedriveReport:
    """Move the valid S3 events of the dead-letter queue back to the ingest queue.

    Messages that stay are held invisible until the pass ends, so that it reads each once,
    then made visible again together: the queue looks as it did, minus what moved.
    """
    report = RedriveReport(dry_run=dry_run)
    held: dict[str, str] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=MAX_BATCH,
            WaitTimeSeconds=SCAN_WAIT_S,
            VisibilityTimeout=SCAN_VISIBILITY_S,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            # A duplicate delivery of a held message only refreshes its receipt handle.
            seen = message["MessageId"] in held
            if seen or not _redrive_one(sqs, queue_url, dlq_url, message, report):
                held[message["MessageId"]] = message["ReceiptHandle"]
    for handle in held.values():
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _redrive_one(
    sqs: Any, queue_url: str, dlq_url: str, message: dict[str, Any], report: RedriveReport
) -> bool:
    """Re-drive one message unless it is to stay (or this is a dry run); True when moved."""
    message_id = message["MessageId"]
    reason = _why_not_redrivable(message["Body"])
    if reason is not None:
        report.kept[message_id] = reason
        logger.info(
            "dead letter kept",
            extra={"stage": "DLQ_KEPT", "message_id": message_id, "reason": reason},
        )
        return False
    report.redriven.append(message_id)
    if report.dry_run:
        logger.info(
            "dead letter would be re-driven (dry run)",
            extra={"stage": "DLQ_DRY_RUN", "message_id": message_id},
        )
        return False
    sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    logger.info("dead letter re-driven", extra={"stage": "DLQ_REDRIVEN", "message_id": message_id})
    return True


def _why_not_redrivable(body: str) -> str | None:
    """None when the body announces a created object; else why it stays."""
    try:
        parsed = parse_message_body(body)
    except MessageParseError as exc:
        return str(exc)
    if parsed.objects:
        return None
    if parsed.rejected:
        return "; ".join(item.reason for item in parsed.rejected)
    return "announces no created object"

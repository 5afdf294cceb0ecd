"""The SQS sensor: one loop that turns S3 upload events into `process-video` flow runs.

    poll (long) → parse → for each video: create a flow run (idempotency key) → delete

A message is deleted only after every run it announces exists, so a crash in between
redelivers it, and the idempotency key maps the redelivery onto the same run. A message
that does not parse is made visible again at once and left for the dead-letter queue.
Records are handled one by one: the valid records of a message start their runs, and its
malformed records are sent on their own to the dead-letter queue before the message is
deleted. Test events and objects outside the video layout are logged and deleted on purpose.
SIGTERM/SIGINT: the batch in hand is finished, then the loop exits.

Every count is also a Prometheus metric, served with `/healthz` on SENSOR_METRICS_PORT
(sensors/metrics.py), which also counts how the deployment's runs end.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import PrefectException
from prefect_aws import AwsCredentials

from blocks import load_block
from flows.runs import Routes, routes_from_settings, start_process_video_run
from sensors.health import sensor_health
from sensors.metrics import RunOutcomeWatcher, SensorMetrics, serve
from video_processor.config import Settings, load_settings
from video_processor.dead_letters import dead_letter_queue_url, park_records
from video_processor.errors import ConfigurationError
from video_processor.events import MessageParseError, ParsedMessage, parse_message_body
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage
from video_processor.models import JobContext, S3ObjectRef

logger = get_logger("sensor")

POLL_ERROR_BACKOFF_BASE_S = 1.0
POLL_ERROR_BACKOFF_MAX_S = 60.0
DEPLOYMENT_LOOKUP_RETRY_S = 5.0


@dataclass
class SensorCounters:
    received: int = 0
    deleted: int = 0
    runs_created: int = 0
    rejected: int = 0
    skipped: int = 0
    poll_errors: int = 0

    def prometheus(self, metrics: SensorMetrics, name: str) -> Any:
        """The Prometheus counter that mirrors one of these counts."""
        return {
            "received": metrics.messages_received,
            "deleted": metrics.messages_deleted,
            "runs_created": metrics.jobs_started,
            "rejected": metrics.messages_rejected,
            "skipped": metrics.messages_skipped,
            "poll_errors": metrics.poll_errors,
        }[name]


class SkippedObject(Exception):
    """An announced object that is not ours to process (logged, then deleted)."""


@dataclass
class SqsSensor:
    settings: Settings
    sqs: Any
    prefect: SyncPrefectClient
    routes: Routes
    counters: SensorCounters = field(default_factory=SensorCounters)
    metrics: SensorMetrics = field(default_factory=SensorMetrics)
    stopping: bool = False
    _dlq_url: str | None = None

    def __repr__(self) -> str:
        return f"SqsSensor(queue={self.settings.sqs_queue_url!r}, {self.counters})"

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one of the sensor's counts and to its Prometheus counter."""
        setattr(self.counters, name, getattr(self.counters, name) + amount)
        self.counters.prometheus(self.metrics, name).inc(amount)

    def run(self) -> None:
        """Poll until asked to stop; consecutive errors back off exponentially."""
        consecutive_errors = 0
        while not self.stopping:
            try:
                with self.metrics.poll_duration.time():
                    self.poll_once()
                self.settings.sensor_heartbeat_file.touch()
                self.metrics.last_poll.set_to_current_time()
                consecutive_errors = 0
            except Exception as exc:  # the loop outlives any one failure; the log says why
                consecutive_errors += 1
                self.count("poll_errors")
                delay = min(
                    POLL_ERROR_BACKOFF_BASE_S * 2 ** (consecutive_errors - 1),
                    POLL_ERROR_BACKOFF_MAX_S,
                )
                logger.warning(
                    "poll failed; backing off",
                    extra={"stage": "POLL_ERROR", "error": repr(exc), "retry_in_s": delay},
                    exc_info=not isinstance(exc, (ClientError, BotoCoreError, OSError)),
                )
                time.sleep(delay)

    def poll_once(self) -> int:
        """Receive one batch and hand every message off; returns how many were received."""
        response = self.sqs.receive_message(
            QueueUrl=self.settings.sqs_queue_url,
            MaxNumberOfMessages=self.settings.sqs_max_messages,
            WaitTimeSeconds=self.settings.sqs_wait_time_seconds,
            VisibilityTimeout=self.settings.sqs_visibility_timeout_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        self.count("received", len(messages))
        invisible_until = time.monotonic() + self.settings.sqs_visibility_timeout_seconds
        handed_off: list[dict[str, Any]] = []
        try:
            for position, message in enumerate(messages):
                in_hand = handed_off + messages[position:]
                invisible_until = self._keep_invisible(in_hand, invisible_until)
                if self.handle(message):
                    handed_off.append(message)
        finally:
            # Runs created before a failure are real: their messages go even then.
            self._delete_batch(handed_off)
        return len(messages)

    def _keep_invisible(self, pending: list[dict[str, Any]], invisible_until: float) -> float:
        """Extend the visibility of the batch's undeleted messages once half of it has passed."""
        timeout_s = self.settings.sqs_visibility_timeout_seconds
        if invisible_until - time.monotonic() > timeout_s / 2:
            return invisible_until
        self.sqs.change_message_visibility_batch(
            QueueUrl=self.settings.sqs_queue_url,
            Entries=[
                {
                    "Id": str(index),
                    "ReceiptHandle": message["ReceiptHandle"],
                    "VisibilityTimeout": timeout_s,
                }
                for index, message in enumerate(pending)
            ],
        )
        return time.monotonic() + timeout_s

    def handle(self, message: dict[str, Any]) -> bool:
        """Hand one message off; True when it is to be deleted (its runs exist)."""
        message_id = message["MessageId"]
        receive_count = message.get("Attributes", {}).get("ApproximateReceiveCount")
        try:
            parsed = parse_message_body(message["Body"])
        except MessageParseError as exc:
            self.count("rejected")
            self._log_rejected(
                "message rejected; it stays on the queue until it moves to the dead-letter queue",
                message_id,
                str(exc),
                receive_count=receive_count,
            )
            self._release(message)
            return False
        self._start_runs(parsed, message_id)
        if parsed.rejected:
            return self._park_rejected(parsed, message)
        return True

    def _park_rejected(self, parsed: ParsedMessage, message: dict[str, Any]) -> bool:
        """Send a message's malformed records alone to the DLQ; True once they are there."""
        message_id = message["MessageId"]
        self.count("rejected")
        if self._dlq_url is None and self.settings.sqs_queue_url:
            self._dlq_url = dead_letter_queue_url(self.sqs, self.settings.sqs_queue_url)
        parked_id = None
        if self._dlq_url is not None:
            parked_id = park_records(
                self.sqs, self._dlq_url, [item.record for item in parsed.rejected], message_id
            )
        for item in parsed.rejected:
            self._log_rejected(
                "record rejected; the message's valid records have their runs",
                message_id,
                item.reason,
                dead_letter_message_id=parked_id,
            )
        if parked_id is None:
            # No dead-letter queue to park in: the whole message goes the redrive way
            # (its runs exist already; redeliveries map onto them).
            self._release(message)
            return False
        return True

    def _log_rejected(self, text: str, message_id: str, reason: str, **fields: Any) -> None:
        logger.error(
            text,
            extra={
                "stage": "MESSAGE_REJECTED",
                "message_id": message_id,
                "reason": reason,
                **fields,
            },
        )

    def _start_runs(self, parsed: ParsedMessage, message_id: str) -> None:
        if parsed.is_test_event:
            self._log_skip(message_id, "s3:TestEvent")
        for reason in parsed.skipped:
            self._log_skip(message_id, reason)
        for obj in parsed.objects:
            try:
                job = self._job_for(obj)
            except SkippedObject as exc:
                self._log_skip(message_id, str(exc))
                continue
            self._create_run(job, message_id)

    def _job_for(self, obj: S3ObjectRef) -> JobContext:
        if obj.bucket != self.settings.video_bucket_name:
            raise SkippedObject(f"s3://{obj.bucket}/{obj.key}: not the video bucket")
        if not obj.key.startswith(self.settings.video_key_prefix):
            raise SkippedObject(f"s3://{obj.bucket}/{obj.key}: outside the video key prefix")
        job = JobContext.from_object(obj)
        if job is None:
            raise SkippedObject(
                f"s3://{obj.bucket}/{obj.key}: key is not videos/{{user_id}}/{{job_id}}.{{ext}}"
            )
        return job

    def _create_run(self, job: JobContext, message_id: str) -> None:
        flow_run, route = start_process_video_run(self.prefect, self.routes, job)
        self.count("runs_created")
        log_stage(
            logger,
            "RUN_CREATED",
            job_fields(job.job_id, job.user_id),
            flow_run_id=str(flow_run.id),
            message_id=message_id,
            idempotency_key=job.idempotency_key,
            route=route,
            size_bytes=job.size,
        )

    def _log_skip(self, message_id: str, reason: str) -> None:
        self.count("skipped")
        logger.info(
            "object skipped",
            extra={"stage": "MESSAGE_SKIPPED", "message_id": message_id, "reason": reason},
        )

    def _delete_batch(self, messages: list[dict[str, Any]]) -> None:
        """One DeleteMessageBatch (a batch is at most 10); a failed entry is redelivered."""
        if not messages:
            return
        response = self.sqs.delete_message_batch(
            QueueUrl=self.settings.sqs_queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
        self.count("deleted", len(response.get("Successful", [])))
        for failure in response.get("Failed", []):
            logger.warning(
                "delete failed; the message will be redelivered and map onto the same run",
                extra={
                    "stage": "DELETE_FAILED",
                    "code": failure.get("Code"),
                    "message_id": messages[int(failure["Id"])]["MessageId"],
                },
            )

    def _release(self, message: dict[str, Any]) -> None:
        """Make a rejected message visible again now, so it reaches the DLQ without waiting."""
        self.sqs.change_message_visibility(
            QueueUrl=self.settings.sqs_queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "stopping after the current batch", extra={"stage": "SENSOR_STOP", "signal": signum}
        )
        self.stopping = True


def find_routes(prefect: SyncPrefectClient, settings: Settings) -> Routes:
    """Wait for the deployments to exist (the worker's deploy may still be running)."""
    while True:
        try:
            return routes_from_settings(prefect, settings)
        except PrefectException as exc:
            logger.warning(
                f"deployments {settings.process_video_deployment!r} and "
                f"{settings.isolated_video_deployment!r} not found yet; run `prefect deploy` "
                "(prefect.yaml)",
                extra={"stage": "SENSOR_WAIT", "error": repr(exc)},
            )
            time.sleep(DEPLOYMENT_LOOKUP_RETRY_S)


def queue_command_settings() -> Settings:
    """The settings of a command that works on the ingest queue, with JSON logging on.

    Exits with status 2 and the reason when they are invalid or SQS_QUEUE_URL is unset."""
    try:
        settings = load_settings()
        if not settings.sqs_queue_url:
            raise ConfigurationError("invalid configuration: SQS_QUEUE_URL is not set")
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
    configure_json_logging(settings.log_level)
    return settings


def main() -> int:
    settings = queue_command_settings()
    metrics = SensorMetrics()
    stopping = threading.Event()
    server = None
    if settings.sensor_metrics_port:
        server = serve(
            metrics,
            lambda: sensor_health(settings),
            settings.sensor_metrics_host,
            settings.sensor_metrics_port,
        )
    sqs = load_block(AwsCredentials, settings.blocks.aws_credentials).get_client("sqs")
    with get_client(sync_client=True) as prefect:
        sensor = SqsSensor(
            settings=settings,
            sqs=sqs,
            prefect=prefect,
            routes=find_routes(prefect, settings),
            metrics=metrics,
        )
        signal.signal(signal.SIGTERM, sensor.stop)
        signal.signal(signal.SIGINT, sensor.stop)
        if server is not None:
            RunOutcomeWatcher(metrics, sensor.routes.deployment_ids).start(
                settings.sensor_outcomes_poll_seconds, stopping
            )
        logger.info(
            "sensor started",
            extra={
                "stage": "SENSOR_START",
                "queue": settings.sqs_queue_url,
                "metrics_port": settings.sensor_metrics_port or None,
            },
        )
        try:
            sensor.run()
        finally:
            stopping.set()
            if server is not None:
                server.shutdown()
        logger.info("sensor stopped", extra={"stage": "SENSOR_STOP", "counters": repr(sensor)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

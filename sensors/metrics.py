"""Prometheus metrics and `/healthz` of the sensor, on one small ASGI server (uvicorn).

Served on SENSOR_METRICS_PORT (0 disables): `GET /metrics` (Prometheus text format) and
`GET /healthz` (200 while polling, 503 once the last successful poll is older than
SENSOR_STALL_SECONDS — the same heartbeat check as `python -m sensors.health`).

What the sensor itself does is counted where it happens: runs created, messages
received / deleted / rejected (left for the dead-letter queue) / skipped, poll errors and
the poll duration. How jobs *end* is decided in worker processes (one per flow run, or
one pod), which have no long-lived metrics endpoint; so `RunOutcomeWatcher` asks the
Prefect API every SENSOR_OUTCOMES_POLL_SECONDS for runs of the sensor's deployments that
reached a final state since the last look, and counts each once:
`jobs_completed_total`, `jobs_failed_total` (FAILED or CRASHED) and
`processing_duration_seconds` (the run's time in RUNNING, retries included). Runs that
ended before this sensor process started are not counted: like every counter, these
start at zero with the process. Run one sensor replica per deployment (as deploy/k8s
does), or the outcome counters are counted once per replica.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from uuid import UUID

import uvicorn
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_asgi_app,
)
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sensors.health import Health
from video_processor.logs import get_logger

logger = get_logger("sensor.metrics")

PROCESSING_BUCKETS_S = (5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
POLL_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60)
OUTCOME_STATES = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED]
# Re-read runs that ended this long before the newest one seen: end times are written
# by whoever reports the state, and may land slightly out of order.
OUTCOME_OVERLAP = timedelta(minutes=2)
OUTCOME_PAGE_SIZE = 200
STOP_TIMEOUT_S = 5.0


@dataclass
class SensorMetrics:
    """Every metric of the sensor, in a registry of its own (tests make many sensors)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        registry = self.registry
        self.jobs_started = Counter(
            "jobs_started", "process-video flow runs created by the sensor", registry=registry
        )
        self.jobs_completed = Counter(
            "jobs_completed", "process-video flow runs that completed", registry=registry
        )
        self.jobs_failed = Counter(
            "jobs_failed", "process-video flow runs that failed or crashed", registry=registry
        )
        self.processing_duration = Histogram(
            "processing_duration_seconds",
            "Time process-video flow runs spent running, by outcome (completed, failed)",
            ["outcome"],
            buckets=PROCESSING_BUCKETS_S,
            registry=registry,
        )
        self.messages_received = Counter(
            "sqs_messages_received", "SQS messages received", registry=registry
        )
        self.messages_deleted = Counter(
            "sqs_messages_deleted",
            "SQS messages deleted after their runs exist (or as not ours)",
            registry=registry,
        )
        self.messages_rejected = Counter(
            "sqs_messages_rejected",
            "SQS messages that do not parse, released for the dead-letter queue",
            registry=registry,
        )
        self.messages_skipped = Counter(
            "sqs_messages_skipped",
            "Announced objects or events skipped (test events, other buckets, other keys)",
            registry=registry,
        )
        self.poll_errors = Counter(
            "poll_errors", "Failed polls (SQS or Prefect API errors)", registry=registry
        )
        self.poll_duration = Histogram(
            "sensor_poll_duration_seconds",
            "One poll: the long-poll receive and handling the batch",
            buckets=POLL_BUCKETS_S,
            registry=registry,
        )
        self.last_poll = Gauge(
            "sensor_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll",
            registry=registry,
        )

    def record_outcome(self, run: FlowRun) -> None:
        completed = run.state_type is StateType.COMPLETED
        (self.jobs_completed if completed else self.jobs_failed).inc()
        self.processing_duration.labels("completed" if completed else "failed").observe(
            run_seconds(run)
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def run_seconds(run: FlowRun) -> float:
    """Time the run spent running; start to end when Prefect has no running time."""
    seconds = run.total_run_time.total_seconds() if run.total_run_time else 0.0
    if seconds <= 0 and run.start_time and run.end_time:
        seconds = (run.end_time - run.start_time).total_seconds()
    return max(seconds, 0.0)


@dataclass
class RunOutcomeWatcher:
    """Counts the deployments' runs that reach a final state (see the module docstring)."""

    metrics: SensorMetrics
    deployment_ids: list[UUID]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seen: dict[tuple[UUID, str], datetime] = field(default_factory=dict)

    @property
    def watermark(self) -> datetime:
        """The newest end time counted (or the start): the next look begins before it."""
        return max([self.started_at, *self.seen.values()])

    def poll_once(self, prefect: SyncPrefectClient) -> int:
        """Count runs that ended since the last look; returns how many were new."""
        after = self.watermark - OUTCOME_OVERLAP
        new = 0
        offset = 0
        while True:
            runs = prefect.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=self.deployment_ids),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=OUTCOME_STATES)),
                    end_time=FlowRunFilterEndTime(after_=after),
                ),
                sort=FlowRunSort.END_TIME_DESC,
                limit=OUTCOME_PAGE_SIZE,
                offset=offset,
            )
            for run in runs:
                new += self._count(run)
            if len(runs) < OUTCOME_PAGE_SIZE:
                break
            offset += OUTCOME_PAGE_SIZE
        self._forget_before(after)
        return new

    def _count(self, run: FlowRun) -> int:
        if run.end_time is None or run.end_time < self.started_at:
            return 0  # ended before this sensor started watching
        # A retried run that fails, then completes, ends twice: both outcomes count.
        key = (run.id, f"{run.state_type}@{run.end_time.isoformat()}")
        if key in self.seen:
            return 0
        self.seen[key] = run.end_time
        self.metrics.record_outcome(run)
        return 1

    def _forget_before(self, after: datetime) -> None:
        """Keep only what the next look can see again (and the newest, for the watermark)."""
        watermark = self.watermark
        self.seen = {key: end for key, end in self.seen.items() if end >= after or end == watermark}

    def run_forever(self, interval_s: float, stopping: threading.Event) -> None:
        """Poll until `stopping` is set; an API error is logged and retried next time."""
        with get_client(sync_client=True) as prefect:
            while not stopping.wait(interval_s):
                try:
                    self.poll_once(prefect)
                except Exception as exc:  # metrics must never take the sensor down
                    logger.warning(
                        "could not read flow run outcomes",
                        extra={"stage": "METRICS_ERROR", "error": repr(exc)},
                    )

    def start(self, interval_s: float, stopping: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run_forever,
            args=(interval_s, stopping),
            name="run-outcome-watcher",
            daemon=True,
        )
        thread.start()
        return thread


def metrics_app(metrics: SensorMetrics, health: Callable[[], Health]) -> ASGIApp:
    """`/metrics` (prometheus_client's ASGI app) and `/healthz`; anything else is a 404."""
    scrape = make_asgi_app(metrics.registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan: uvicorn is started with it off
            return
        if scope["path"] == "/metrics":
            await scrape(scope, receive, send)
            return
        if scope["path"] == "/healthz":
            status = health()
            code = HTTPStatus.OK if status.healthy else HTTPStatus.SERVICE_UNAVAILABLE
            reply = PlainTextResponse(f"{status.message}\n", code)
        else:
            reply = PlainTextResponse("not found\n", HTTPStatus.NOT_FOUND)
        await reply(scope, receive, send)

    return app


class MetricsServer:
    """uvicorn serving an ASGI app from a daemon thread, on a socket bound at construction."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.socket = socket.create_server((host, port))
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self.socket]},
            name="metrics-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def shutdown(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self.socket.close()


def serve(
    metrics: SensorMetrics, health: Callable[[], Health], host: str, port: int
) -> MetricsServer:
    """Serve /metrics and /healthz in a daemon thread; `port=0` in tests picks a free one."""
    return MetricsServer(metrics_app(metrics, health), host, port)

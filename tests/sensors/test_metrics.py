"""The sensor's Prometheus metrics, /healthz, and the run-outcome counting."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType
from prometheus_client.parser import text_string_to_metric_families

from sensors.health import heartbeat_health
from sensors.metrics import OUTCOME_PAGE_SIZE, RunOutcomeWatcher, SensorMetrics, serve
from tests.sensors.test_sqs_sensor import RecordingPrefect, event, make_sensor, queue  # noqa: F401


def samples(metrics: SensorMetrics) -> dict[str, float]:
    """Every sample by name (with labels), from the text exposition a scrape sees."""
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_sensor_counts_are_prometheus_counters(sqs_client, queue):  # noqa: F811
    sensor = make_sensor(sqs_client, queue, RecordingPrefect())
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/1.mp4", "videos/7/2.mp4"))
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("uploads/7/3.mp4"))
    sqs_client.send_message(QueueUrl=queue, MessageBody="not json")
    while sensor.poll_once():
        pass

    values = samples(sensor.metrics)
    assert values["jobs_started_total"] == 2
    assert values["sqs_messages_received_total"] >= 3
    assert values["sqs_messages_deleted_total"] == 2
    assert values["sqs_messages_skipped_total"] == 1
    assert values["sqs_messages_rejected_total"] >= 1
    assert values["poll_errors_total"] == 0


def test_poll_errors_and_poll_duration_are_recorded(sqs_client, queue, monkeypatch, tmp_path):  # noqa: F811
    sensor = make_sensor(sqs_client, queue, RecordingPrefect(fail_with=OSError("down")))
    sensor.settings.sensor_heartbeat_file = tmp_path / "heartbeat"
    sqs_client.send_message(QueueUrl=queue, MessageBody=event("videos/7/1.mp4"))

    def back_off(_seconds: float) -> None:  # the first failure's back-off ends the loop
        sensor.stopping = True

    monkeypatch.setattr("sensors.sqs_sensor.time.sleep", back_off)
    sensor.run()

    values = samples(sensor.metrics)
    assert values["poll_errors_total"] == 1
    assert values["sensor_poll_duration_seconds_count"] == 1  # failed polls are timed too
    assert values["sensor_last_successful_poll_timestamp_seconds"] == 0
    assert not sensor.settings.sensor_heartbeat_file.exists()


def test_http_server_serves_metrics_and_healthz_from_the_heartbeat(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    metrics = SensorMetrics()
    metrics.jobs_started.inc(3)
    server = serve(metrics, lambda: heartbeat_health(heartbeat, 60), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        scrape = httpx.get(f"{base}/metrics")
        assert scrape.status_code == 200
        assert "jobs_started_total 3.0" in scrape.text

        missing = httpx.get(f"{base}/healthz")
        assert missing.status_code == 503 and "no heartbeat" in missing.text
        heartbeat.touch()
        assert httpx.get(f"{base}/healthz").status_code == 200
        stale = time.time() - 61
        os.utime(heartbeat, (stale, stale))
        stalled = httpx.get(f"{base}/healthz")
        assert stalled.status_code == 503 and "last successful poll" in stalled.text
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.shutdown()


def finished_run(state: StateType, end: datetime, seconds: float, run_id=None) -> FlowRun:
    return FlowRun(
        id=run_id or uuid.uuid4(),
        flow_id=uuid.uuid4(),
        state=State(type=state),
        state_type=state,
        start_time=end - timedelta(seconds=seconds),
        end_time=end,
        total_run_time=timedelta(seconds=seconds),
    )


class FakeRuns:
    """`read_flow_runs` over a list, honouring the end-time filter and paging."""

    def __init__(self) -> None:
        self.runs: list[FlowRun] = []

    def read_flow_runs(self, *, flow_run_filter, sort, limit, offset):
        after = flow_run_filter.end_time.after_
        wanted = flow_run_filter.state.type.any_
        runs = [run for run in self.runs if run.end_time >= after and run.state_type in wanted]
        runs.sort(key=attrgetter("end_time"), reverse=True)
        return runs[offset : offset + limit]


def test_outcomes_are_counted_once_each_and_only_after_the_watcher_started():
    start = datetime.now(UTC)
    metrics = SensorMetrics()
    watcher = RunOutcomeWatcher(metrics, [uuid.uuid4()], started_at=start)
    api = FakeRuns()
    retried = uuid.uuid4()
    api.runs = [
        finished_run(StateType.COMPLETED, start - timedelta(seconds=30), 5),  # before start
        finished_run(StateType.COMPLETED, start + timedelta(seconds=1), 12),
        finished_run(StateType.CRASHED, start + timedelta(seconds=2), 3),
        finished_run(StateType.FAILED, start + timedelta(seconds=3), 4, run_id=retried),
    ]
    assert watcher.poll_once(api) == 3  # type: ignore[arg-type]
    assert watcher.poll_once(api) == 0  # type: ignore[arg-type]
    # The failed run is retried from the UI and completes: a second outcome.
    api.runs.append(finished_run(StateType.COMPLETED, start + timedelta(seconds=9), 6, retried))

    assert watcher.poll_once(api) == 1  # type: ignore[arg-type]
    values = samples(metrics)
    assert values["jobs_completed_total"] == 2
    assert values["jobs_failed_total"] == 2
    assert values["processing_duration_seconds_count{outcome=completed}"] == 2
    assert values["processing_duration_seconds_sum{outcome=completed}"] == pytest.approx(18)
    assert values["processing_duration_seconds_sum{outcome=failed}"] == pytest.approx(7)


def test_outcome_watcher_pages_through_many_runs():
    start = datetime.now(UTC)
    metrics = SensorMetrics()
    watcher = RunOutcomeWatcher(metrics, [uuid.uuid4()], started_at=start)
    api = FakeRuns()
    count = OUTCOME_PAGE_SIZE * 2 + 7
    api.runs = [
        finished_run(StateType.COMPLETED, start + timedelta(milliseconds=i), 1)
        for i in range(count)
    ]
    assert watcher.poll_once(api) == count  # type: ignore[arg-type]
    assert samples(metrics)["jobs_completed_total"] == count

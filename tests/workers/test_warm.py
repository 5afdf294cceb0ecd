"""The warm worker as Prefect sees it: a registered type, its settings, its heartbeats."""

import uuid

from prefect.client.schemas.objects import FlowRun
from prefect.workers.base import BaseWorker

from workers import warm
from workers.warm import WarmWorker, WarmWorkerSettings


def test_prefect_finds_the_warm_worker_type_through_the_collection_entry_point():
    assert BaseWorker.get_worker_class_from_type("warm") is WarmWorker
    assert "warm" in BaseWorker.get_all_available_worker_types()


def test_without_limit_the_worker_takes_its_own_max_concurrent_runs(monkeypatch):
    monkeypatch.setenv("WARM_WORKER_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("WARM_WORKER_DRAIN_SECONDS", "42")
    assert WarmWorker(work_pool_name="p")._limit == 3
    assert WarmWorker(work_pool_name="p", limit=5)._limit == 5
    assert WarmWorkerSettings().drain_seconds == 42


def test_a_claimed_run_gets_the_heartbeat_the_zombie_automation_watches(monkeypatch):
    emitted = []
    monkeypatch.setattr(warm, "emit_event", lambda **event: emitted.append(event))
    run = FlowRun(flow_id=uuid.uuid4(), deployment_id=uuid.uuid4(), name="job-x")

    warm._emit_heartbeat(run)

    [event] = emitted
    assert event["event"] == "prefect.flow-run.heartbeat"
    assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{run.id}"
    assert {
        "prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
        "prefect.resource.role": "deployment",
    } in event["related"]

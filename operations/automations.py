"""The automations that keep crashed runs from ending without a callback.

- *zombie runs*: a `process-video` run whose heartbeats stop (pod evicted, node lost,
  warm worker killed) is marked Crashed. Flow runs emit heartbeats when
  PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set (≥ 30 s), and the warm worker emits them for
  every run it has claimed, Pending included; the window is a few missed heartbeats.
- *runs that never start*: a run Pending for longer than a start window (a pod that
  never came up, a process killed before its first heartbeat) is marked Crashed. Its
  window is longer: scheduling a pod and pulling an image, or a busy machine starting a
  Python process, can take minutes, and heartbeats only begin once the run is Running.
- *crashed runs*: every Crashed `process-video` run starts `recover-crashed-run`.

`ensure_automations` creates them or updates them in place (by name): idempotent.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.automations import AutomationCore
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

ZOMBIE_AUTOMATION = "video-processor: crash zombie runs"
START_AUTOMATION = "video-processor: crash runs that never start"
CRASH_AUTOMATION = "video-processor: recover crashed runs"
TERMINAL_EVENTS = {
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
}


def _runs_of(deployment_ids: list[UUID]) -> dict[str, ResourceSpecification]:
    return {
        "match": ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
        "match_related": ResourceSpecification(
            {
                "prefect.resource.id": [f"prefect.deployment.{id_}" for id_ in deployment_ids],
                "prefect.resource.role": "deployment",
            }
        ),
    }


def _crash_when_silent(
    name: str,
    description: str,
    after: set[str],
    expect: set[str],
    window_s: float,
    runs: list[UUID],
) -> AutomationCore:
    return AutomationCore(
        name=name,
        description=description,
        trigger=EventTrigger(
            after=after,
            expect=expect | TERMINAL_EVENTS,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_s),
            **_runs_of(runs),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"{description} ({window_s:.0f} s): the process or pod is gone",
            )
        ],
    )


def desired_automations(
    process_deployment_ids: list[UUID],
    recovery_deployment_id: UUID,
    zombie_after_s: float,
    start_within_s: float,
) -> list[AutomationCore]:
    zombie = _crash_when_silent(
        ZOMBIE_AUTOMATION,
        "no heartbeat in time",
        after={"prefect.flow-run.heartbeat", "prefect.flow-run.Running"},
        expect={"prefect.flow-run.heartbeat"},
        window_s=zombie_after_s,
        runs=process_deployment_ids,
    )
    never_started = _crash_when_silent(
        START_AUTOMATION,
        "not Running in time",
        after={"prefect.flow-run.Pending"},
        expect={"prefect.flow-run.Running"},
        window_s=start_within_s,
        runs=process_deployment_ids,
    )
    crashed = AutomationCore(
        name=CRASH_AUTOMATION,
        description="A crashed process-video run is rescheduled or reported FAILED.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            **_runs_of(process_deployment_ids),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=recovery_deployment_id,
                # An explicit jinja kind renders a string; a bare "{{ flow_run.id }}" would be
                # rendered through `tojson`, which cannot serialise the UUID.
                parameters={
                    "flow_run_id": {"__prefect_kind": "jinja", "template": "{{ flow_run.id }}"}
                },
            )
        ],
    )
    return [zombie, never_started, crashed]


def ensure_automations(
    client: SyncPrefectClient,
    process_deployments: list[str],
    recovery_deployment: str,
    zombie_after_s: float,
    start_within_s: float,
) -> list[str]:
    """Create or update the automations for the runs of every named `process-video`
    deployment; returns their names."""
    wanted = desired_automations(
        [client.read_deployment_by_name(name).id for name in process_deployments],
        client.read_deployment_by_name(recovery_deployment).id,
        zombie_after_s,
        start_within_s,
    )
    for automation in wanted:
        existing = client.read_automations_by_name(automation.name)
        if existing:
            client.update_automation(existing[0].id, automation)
        else:
            client.create_automation(automation)
    return [automation.name for automation in wanted]

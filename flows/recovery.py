"""The `recover-crashed-run` flow: what happens to a `process-video` run that crashed.

A run whose process or pod died (SIGKILL, OOM, eviction) ends Crashed: reported by its
worker, or by the zombie automation when its heartbeats stop. The crash automation
starts this flow for it, and this flow either reschedules the same run (its cached
stages are not paid for again) or, past the bound, sends the FAILED callback.

Its deployment allows one run at a time, so two recoveries of one crash never
interleave: the second finds the run no longer Crashed and does nothing. Two Crashed
states in a row (a worker's report and the zombie automation) count as one crash.

Each recovery also takes every other run that is Crashed by then (a lost worker leaves
a burst of them), so the burst is rescheduled at once instead of one recovery at a time.
The automation fires once per crash; if the recovery run itself never starts (its
submission failed, its worker died), the crashed run would wait forever. So the same
deployment also runs on a schedule without a `flow_run_id`: it sweeps every
`process-video` run Crashed for longer than `sweep_after_s` and recovers it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import State, StateType
from prefect.states import AwaitingRetry, Failed

from flows.tasks import send_callback
from video_processor.config import load_settings
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage
from video_processor.models import JobContext
from video_processor.stages import failed_callback

logger = get_logger("recovery")
DEFAULT_MAX_RESCHEDULES = 2
DEFAULT_SWEEP_AFTER_S = 300.0  # the automation's own recovery normally acts within seconds
SWEEP_PAGE = 200


class Decision(StrEnum):
    SKIP = "skip"
    RESCHEDULE = "reschedule"
    GIVE_UP = "give-up"


def crash_count(states: list[State]) -> int:
    """How many attempts crashed: consecutive Crashed states are one crash."""
    crashes, previous = 0, None
    for state in sorted(states, key=lambda state: state.timestamp):
        if state.type is StateType.CRASHED and previous is not StateType.CRASHED:
            crashes += 1
        previous = state.type
    return crashes


def decide(current: StateType | None, crashes: int, max_reschedules: int) -> Decision:
    if current is not StateType.CRASHED:
        return Decision.SKIP
    return Decision.RESCHEDULE if crashes <= max_reschedules else Decision.GIVE_UP


def _recover(client: SyncPrefectClient, flow_run_id: UUID, max_reschedules: int) -> Decision:
    flow_run = client.read_flow_run(flow_run_id)
    job = JobContext.model_validate(flow_run.parameters["job"])
    crashes = crash_count(client.read_flow_run_states(flow_run_id))
    decision = decide(flow_run.state_type, crashes, max_reschedules)
    log_stage(
        logger,
        "RECOVERY",
        job_fields(job.job_id, job.user_id),
        flow_run_id=str(flow_run_id),
        crashes=crashes,
        decision=decision,
    )
    if decision is Decision.RESCHEDULE:
        message = f"rescheduled after crash {crashes} of at most {max_reschedules + 1}"
        client.set_flow_run_state(flow_run_id, AwaitingRetry(message=message), force=True)
    elif decision is Decision.GIVE_UP:
        last = (flow_run.state.message if flow_run.state else None) or "no message"
        reason = f"the run crashed {crashes} times; last: {last}"
        send_callback(job, failed_callback(job, None, fallback=reason))
        # Failed, so that the sweep does not find it again: the job has its final callback.
        message = f"gave up after {crashes} crashes; FAILED sent"
        client.set_flow_run_state(flow_run_id, Failed(message=message), force=True)
    return decision


def long_crashed_runs(
    client: SyncPrefectClient, deployment_names: list[str], older_than_s: float
) -> list[UUID]:
    """Runs of the deployments whose Crashed state is older than `older_than_s`."""
    ids = [client.read_deployment_by_name(name).id for name in deployment_names]
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))
        ),
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)),
        limit=SWEEP_PAGE,
    )
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    return [run.id for run in runs if run.state and run.state.timestamp < cutoff]


@flow(name="recover-crashed-run", flow_run_name="recover-{flow_run_id}")
def recover_crashed_run(
    flow_run_id: UUID | None = None,
    max_reschedules: int = DEFAULT_MAX_RESCHEDULES,
    sweep_after_s: float = DEFAULT_SWEEP_AFTER_S,
) -> str:
    """Reschedule a crashed `process-video` run, or send its FAILED callback; without
    `flow_run_id`, do so for every run Crashed for longer than `sweep_after_s`."""
    configure_json_logging()
    settings = load_settings()
    deployments = [settings.process_video_deployment, settings.isolated_video_deployment]
    with get_client(sync_client=True) as client:
        if flow_run_id is None:
            swept = long_crashed_runs(client, deployments, sweep_after_s)
            decisions = [_recover(client, run_id, max_reschedules) for run_id in swept]
            return f"swept {len(decisions)} crashed runs"
        decision = _recover(client, flow_run_id, max_reschedules)
        # A lost worker leaves a burst of crashed runs, and recoveries run one at a time:
        # this one takes every run crashed by now, and theirs find nothing left to do.
        others = [
            run_id for run_id in long_crashed_runs(client, deployments, 0) if run_id != flow_run_id
        ]
        for run_id in others:
            _recover(client, run_id, max_reschedules)
        return f"{decision.value}; {len(others)} other crashed runs recovered"

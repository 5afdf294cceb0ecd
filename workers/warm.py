"""The warm worker: a Prefect worker type that runs flow runs inside its own process.

    prefect work-pool create video-warm --type warm
    prefect worker start --pool video-warm --type warm [--limit N]

Every stock Prefect worker starts a process (or a pod) per flow run, and each one pays
for `import prefect`, the flow's modules and the engine's start-up again: several
CPU-seconds, more than a short video's own work. This worker claims runs from its pool
like any other (Pending is proposed through the API, so work-pool, work-queue and
deployment concurrency limits apply as usual) and executes each with Prefect's own
engine, `prefect.flow_engine.run_flow`, in a thread of this long-lived process. A flow
is loaded once per entrypoint; its modules, blocks and clients stay warm between runs.

What operators rely on is kept:

- *Limits*: at most `--limit` runs at once (default WARM_WORKER_MAX_CONCURRENT_RUNS);
  runs over it stay Scheduled for the next poll or another worker.
- *Cancellation* from the UI or API: the worker reads its runs' states every
  WARM_WORKER_CANCEL_POLL_SECONDS; a Cancelling run's next task, or next chunk, does
  not start (`flows.cancellation`), and the worker runs the flow's `on_cancellation`
  hooks and marks it Cancelled. What cannot be interrupted is the step in progress: one
  STT request, one LLM call (a long transcript's summary is several) or the FFmpeg
  pass, each bounded by its own timeout, so a cancellation takes at most the poll
  interval plus that long.
- *SIGTERM* (pod shutdown, `make down`): claiming stops at once; runs in hand get
  WARM_WORKER_DRAIN_SECONDS to finish; a run still going then is marked Crashed with
  that reason, so the crash automation reschedules it elsewhere (its cached stages are
  not paid for again), and the process exits.
- *SIGKILL, OOM, eviction*: nothing runs any more, so nothing is reported; the worker
  emits heartbeats for a run from the moment it claims it until its thread starts (then
  the engine sends its own, from Running on), and the zombie automation marks runs whose
  heartbeats stop as Crashed within its window, Pending ones included.

The deployment's `env` job variable cannot differ per run inside one process: the
worker's own environment is the runs' environment (set it on the worker's pod).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.context import SyncClientContext
from prefect.events import emit_event
from prefect.exceptions import Abort, Pause
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.states import Cancelled, Crashed
from prefect.utilities.engine import propose_state_sync
from prefect.workers.base import (
    BaseJobConfiguration,
    BaseVariables,
    BaseWorker,
    BaseWorkerResult,
)
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows import cancellation
from video_processor.logs import configure_json_logging, get_logger
from workers.engine import SuspensionWatch, run_flow_in_thread

logger = get_logger("warm_worker")
EXIT_ABANDONED_RUNS = 75  # EX_TEMPFAIL: runs were handed back to the crash automation


class WarmWorkerSettings(BaseSettings):
    """The worker's own knobs (environment variables with the WARM_WORKER_ prefix)."""

    model_config = SettingsConfigDict(env_prefix="WARM_WORKER_", extra="ignore")

    max_concurrent_runs: int = Field(16, ge=1, description="runs at once without --limit")
    drain_seconds: float = Field(600.0, ge=0, description="SIGTERM: time runs get to finish")
    cancel_poll_seconds: float = Field(5.0, gt=0, description="how often Cancelling is read")
    heartbeat_seconds: float = Field(30.0, ge=10, description="heartbeats for held runs")


class WarmJobConfiguration(BaseJobConfiguration):
    """Nothing to provision: a run is a thread of the worker's process."""


class WarmVariables(BaseVariables):
    """The warm pool's job variables (Prefect's base set: env, labels, name, command)."""


class WarmWorkerResult(BaseWorkerResult):
    """The run ended in this process; status 0 whatever its state (the engine set it)."""


class HeldRun:
    """A run this worker has claimed, and the event its thread sets when it ends."""

    def __init__(self, flow_run: FlowRun) -> None:
        self.flow_run = flow_run
        self.finished = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def finish(self) -> None:
        """From the run's thread: wake the worker's loop."""
        self._loop.call_soon_threadsafe(self.finished.set)


class WarmWorker(BaseWorker[WarmJobConfiguration, WarmVariables, WarmWorkerResult]):
    type = "warm"
    job_configuration = WarmJobConfiguration
    job_configuration_variables = WarmVariables
    _description = (
        "Runs flow runs in threads of one long-lived process: no process or pod start per "
        "run. For many short runs of trusted code; a run cannot be killed on its own."
    )
    _documentation_url = "https://github.com/ai-video-processor/ai-video-processor#which-worker"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.settings = WarmWorkerSettings()
        if kwargs.get("limit") is None:
            kwargs["limit"] = self.settings.max_concurrent_runs
        super().__init__(*args, **kwargs)
        self._held: dict[UUID, HeldRun] = {}
        self._claimed: dict[UUID, FlowRun] = {}  # Pending, not yet handed to a thread
        self._flows: dict[str, Flow[..., Any]] = {}
        self._entrypoints: dict[UUID, str] = {}  # a redeployed entrypoint needs a restart
        self._flow_lock = threading.Lock()
        self._stopping = anyio.Event()
        self._abandoned: list[UUID] = []
        self._suspensions = SuspensionWatch()
        # The worker owns cancellation (state and hooks), as Prefect's runner does for the
        # processes it starts; the engine inside each thread must not do it a second time.
        os.environ["PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS"] = "false"

    def __repr__(self) -> str:
        return f"WarmWorker(pool={self._work_pool_name!r}, held={len(self._held)})"

    async def setup(self) -> None:
        configure_json_logging()
        await super().setup()
        await self._suspensions.start()
        assert self._runs_task_group is not None
        self._runs_task_group.start_soon(self._watch_held_runs)

    async def teardown(self, *exc_info: Any) -> None:
        self._stopping.set()
        await self._suspensions.stop()
        await super().teardown(*exc_info)

    async def start(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().start(*args, **kwargs)
        finally:
            if self._abandoned:
                # Their threads are still going; the runs are Crashed and rescheduled, so
                # nothing of theirs may continue once this process is meant to be gone.
                logger.error(
                    "exiting with runs unfinished after the drain period",
                    extra={"stage": "WORKER_EXIT", "flow_run_ids": self._abandoned},
                )
                os._exit(EXIT_ABANDONED_RUNS)

    async def _propose_pending_state(self, flow_run: FlowRun) -> bool:
        """Prefect's claim, and at once this worker's first heartbeat for the run: if the
        worker dies before the run starts, the zombie automation still recognises it."""
        claimed = await super()._propose_pending_state(flow_run)
        if claimed:
            self._claimed[flow_run.id] = flow_run
            _emit_heartbeat(flow_run)
        return claimed

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        """Prefect's worker labels on the run, written beside it rather than before it
        starts: on a busy SQLite server this PATCH is often answered 503, and the client's
        back-off (2 s, then 4 s) would hold the run back."""
        assert self._runs_task_group is not None
        self._runs_task_group.start_soon(self._label_run, flow_run_id)

    async def _label_run(self, flow_run_id: UUID) -> None:
        try:
            await super()._give_worker_labels_to_flow_run(flow_run_id)
        except Exception:
            logger.warning("could not label flow run %s", flow_run_id, exc_info=True)

    async def _submit_run(self, flow_run: FlowRun) -> None:
        try:
            await super()._submit_run(flow_run)
        finally:  # started (then held) or refused: no longer only claimed
            self._claimed.pop(flow_run.id, None)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: WarmJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> WarmWorkerResult:
        flow = await anyio.to_thread.run_sync(self._flow_for, flow_run)
        held = HeldRun(flow_run)
        self._held[flow_run.id] = held
        self._suspensions.add(flow_run.id)
        identifier = f"{os.getpid()}:{flow_run.id}"
        thread = threading.Thread(
            target=self._execute, args=(flow, held), name=f"flow-run-{flow_run.id}", daemon=True
        )
        thread.start()
        if task_status is not None:
            task_status.started(identifier)  # type: ignore[arg-type]  # the run's "pid"
        try:
            await self._wait(held)
        finally:
            self._held.pop(flow_run.id, None)
            self._suspensions.remove(flow_run.id)
            cancellation.forget(flow_run.id)
        return WarmWorkerResult(identifier=identifier, status_code=0)

    async def _wait(self, held: HeldRun) -> None:
        """Until the run's thread ends; when the worker stops, for the drain period only."""
        try:
            await held.finished.wait()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._drain(held)
            raise

    async def _drain(self, held: HeldRun) -> None:
        logger.info(
            "stopping: waiting for a run in hand",
            extra={"stage": "WORKER_DRAIN", "flow_run_id": str(held.flow_run.id)},
        )
        with anyio.move_on_after(self.settings.drain_seconds):
            await held.finished.wait()
        if held.finished.is_set():
            return
        self._abandoned.append(held.flow_run.id)
        message = (
            f"the warm worker stopped (SIGTERM) and the run did not finish within "
            f"WARM_WORKER_DRAIN_SECONDS={self.settings.drain_seconds:.0f}"
        )
        async with get_client() as client:
            await client.set_flow_run_state(held.flow_run.id, Crashed(message=message), force=True)

    def _flow_for(self, flow_run: FlowRun) -> Flow[..., Any]:
        """The run's flow, loaded from its deployment's entrypoint once per process."""
        if flow_run.deployment_id is None:
            raise ValueError(f"flow run {flow_run.id} has no deployment to load a flow from")
        entrypoint = self._entrypoints.get(flow_run.deployment_id)
        if entrypoint is None:
            with get_client(sync_client=True) as client:
                entrypoint = client.read_deployment(flow_run.deployment_id).entrypoint
            if entrypoint is None:
                raise ValueError(f"the deployment of flow run {flow_run.id} has no entrypoint")
            self._entrypoints[flow_run.deployment_id] = entrypoint
        with self._flow_lock:
            if entrypoint not in self._flows:
                self._flows[entrypoint] = load_flow_from_entrypoint(
                    entrypoint, use_placeholder_flow=False
                )
            return self._flows[entrypoint]

    def _execute(self, flow: Flow[..., Any], held: HeldRun) -> None:
        """The run's thread: Prefect's engine, then what the engine leaves to a runner."""
        run_id = held.flow_run.id
        try:
            # The engine takes this thread's client instead of opening its own.
            with SyncClientContext.get_or_create() as client_context:
                client = client_context.client
                final: State[Any] | None = None
                try:
                    # The run as read at the claim: the engine reads it again itself
                    # before the flow starts.
                    final = run_flow_in_thread(flow, held.flow_run)
                except (Abort, Pause):
                    pass  # refused by the server (cancelled, claimed elsewhere) or suspended
                except BaseException as exc:
                    logger.exception("flow run %s crashed in its thread", run_id)
                    crashed: State[Any] = Crashed(
                        message=f"the warm worker's run thread raised {exc!r}"
                    )
                    propose_state_sync(client, crashed, flow_run_id=run_id)
                if final is None or not final.is_completed():
                    self._finish_cancellation(client, flow, run_id)
        except Exception:
            logger.exception("could not conclude flow run %s", run_id)
        finally:
            held.finish()

    def _finish_cancellation(self, client: Any, flow: Flow[..., Any], run_id: UUID) -> None:
        """A cancelled run gets its flow's on_cancellation hooks, then Cancelled."""
        flow_run = client.read_flow_run(run_id)
        state = flow_run.state
        if state is None or state.type not in (StateType.CANCELLING, StateType.CANCELLED):
            return
        for hook in flow.on_cancellation_hooks:
            try:
                hook(flow, flow_run, flow_run.state)
            except Exception:
                logger.exception("on_cancellation hook %s failed", getattr(hook, "__name__", hook))
        if state.type is StateType.CANCELLING:
            client.set_flow_run_state(run_id, Cancelled(message="Cancelled by the warm worker."))

    async def _watch_held_runs(self) -> None:
        """Heartbeats for claimed runs not yet started (once a run's engine has it, the
        engine sends its heartbeats), and cancellation requests passed to held runs."""
        last_heartbeat = 0.0
        while not self._stopping.is_set():
            with anyio.move_on_after(self.settings.cancel_poll_seconds):
                await self._stopping.wait()
            if not self._held and not self._claimed:
                continue
            try:
                if self._held:
                    await self._request_cancellations()
                if time.monotonic() - last_heartbeat >= self.settings.heartbeat_seconds:
                    last_heartbeat = time.monotonic()
                    for flow_run in list(self._claimed.values()):
                        _emit_heartbeat(flow_run)
            except Exception:
                logger.warning("watching held runs failed; trying again", exc_info=True)

    async def _request_cancellations(self) -> None:
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=list(self._held)),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING])),
            )
        )
        for flow_run in runs:
            if not cancellation.is_requested(flow_run.id):
                logger.info(
                    "cancellation requested",
                    extra={"stage": "RUN_CANCELLING", "flow_run_id": str(flow_run.id)},
                )
                cancellation.request(flow_run.id)

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: WarmJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """A held run cancelled before it started: its stages stop at their first check."""
        _, _, run_id = infrastructure_pid.partition(":")
        if run_id:
            cancellation.request(UUID(run_id))


def _emit_heartbeat(flow_run: FlowRun) -> None:
    """The event the engine emits for a Running run, for a run that is only claimed."""
    related = [
        {"prefect.resource.id": f"prefect.flow.{flow_run.flow_id}", "prefect.resource.role": "flow"}
    ]
    if flow_run.deployment_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                "prefect.resource.role": "deployment",
            }
        )
    emit_event(
        event="prefect.flow-run.heartbeat",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
            "prefect.resource.name": flow_run.name or "",
        },
        related=related,
    )


__all__ = ["WarmWorker", "WarmWorkerSettings"]

"""Prefect's flow engine, as the warm worker runs it: many runs in one process.

For each run of a deployment, Prefect's engine starts a suspension observer of its own:
a thread with its own event loop, a new API client, an event subscription on the
server, and a poll of the run's state every 10 s. A process that holds many runs keeps
one observer for all of them instead (`SuspensionWatch`), and each run's engine only
registers where a suspension is delivered. A run that already has the name its
flow would give it is not renamed (one PATCH less). Everything else is Prefect's engine
as `prefect.flow_engine.run_flow` drives it for a synchronous flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any
from uuid import UUID

from prefect._flow_run_suspension import (
    FlowRunSuspensionRequest,
    mark_flow_run_suspension_requested,
    register_flow_run_suspension_request,
)
from prefect._internal.engine import resolve_custom_flow_run_name
from prefect._internal.observers import FlowRunSuspendingObserver
from prefect.client.schemas.objects import FlowRun, State
from prefect.flow_engine import FlowRunEngine
from prefect.flows import Flow
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs


class SharedSuspensionFlowRunEngine(FlowRunEngine[Any, Any]):
    """The engine of one run whose suspension the process-wide observer watches."""

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[FlowRunSuspensionRequest]:
        if self.flow_run is None:
            raise ValueError("Flow run not set")
        request = self._get_flow_run_suspension_request()
        with register_flow_run_suspension_request(self.flow_run.id, request):
            request.raise_if_requested()
            yield request


def run_flow_in_thread(flow: Flow[..., Any], flow_run: FlowRun) -> State[Any]:
    """Run a claimed flow run of a synchronous flow to its final state, in this thread."""
    if flow.isasync or flow.isgenerator:
        raise TypeError(f"the warm worker runs synchronous flows only, not {flow.name!r}")
    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters)
    engine = SharedSuspensionFlowRunEngine(
        flow=flow, flow_run=flow_run, parameters=get_call_parameters(flow.fn, args, kwargs)
    )
    engine._flow_run_name_set = already_named(flow, flow_run)
    with engine.start():
        while engine.is_running():
            with engine.run_context():
                engine.call_flow_fn()
    return engine.state


def already_named(flow: Flow[..., Any], flow_run: FlowRun) -> bool:
    """Whether the run has the name the flow's `flow_run_name` gives it (whoever created
    it named it so): the engine's rename would be a PATCH that changes nothing."""
    if not flow.flow_run_name or not flow_run.name:
        return False
    try:
        parameters = flow.validate_parameters(flow_run.parameters)
        return resolve_custom_flow_run_name(flow, parameters) == flow_run.name
    except Exception:  # a template the parameters do not fill: the engine decides, as usual
        return False


class SuspensionWatch:
    """One suspension observer (one API client, one event subscription, one poll) for
    every run this process holds; a suspension reaches the run's engine through the
    registry its engine enters."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._observer: FlowRunSuspendingObserver | None = None

    async def start(self) -> None:
        observer = FlowRunSuspendingObserver(on_suspended=_deliver_suspension)
        self._observer = await self._stack.enter_async_context(observer)

    async def stop(self) -> None:
        self._observer = None
        await self._stack.aclose()

    def add(self, flow_run_id: UUID) -> None:
        if self._observer is not None:
            self._observer.add_in_flight_flow_run_id(flow_run_id)

    def remove(self, flow_run_id: UUID) -> None:
        if self._observer is not None:
            self._observer.remove_in_flight_flow_run_id(flow_run_id)


def _deliver_suspension(flow_run_id: UUID, state: State[Any]) -> None:
    mark_flow_run_suspension_requested(flow_run_id, state)

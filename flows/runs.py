"""Starting a `process-video` run: one function for the sensor and the backfill.

The run goes to one of two deployments by the upload's size: up to
ROUTE_MAX_WARM_BYTES to the warm worker's (`PROCESS_VIDEO_DEPLOYMENT`, runs in a
long-lived process), larger or of unknown size to the isolated one
(`ISOLATED_VIDEO_DEPLOYMENT`: a Kubernetes Job, or locally a process, per run), where a
big video's memory and time cannot affect other runs. The route is logged and tagged on
the run (`route:warm`, `route:isolated`).

Both deployments belong to the `process-video` flow, and Prefect's idempotency keys are
unique per flow: a redelivered message or a backfill maps onto the job's one run, on
whichever deployment it was started. The same key makes the creation safe to ask again
when the API is busy (`flows.prefect_api`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun

from flows.prefect_api import briefly_retried
from video_processor.config import Settings
from video_processor.models import JobContext


class Route(StrEnum):
    WARM = "warm"
    ISOLATED = "isolated"


@dataclass(frozen=True)
class Routes:
    """The deployments runs are started on; without `isolated`, every run goes `warm`."""

    warm: UUID
    isolated: UUID | None = None
    max_warm_bytes: int = 0

    @property
    def deployment_ids(self) -> list[UUID]:
        return [self.warm] if self.isolated is None else [self.warm, self.isolated]

    def for_job(self, job: JobContext) -> tuple[Route, UUID]:
        if self.isolated is None:
            return Route.WARM, self.warm
        if job.size is not None and job.size <= self.max_warm_bytes:
            return Route.WARM, self.warm
        return Route.ISOLATED, self.isolated


def routes_from_settings(prefect: SyncPrefectClient, settings: Settings) -> Routes:
    """Both deployments by name (raises ObjectNotFound when one is missing); with
    ROUTE_MAX_WARM_BYTES=0 every upload is routed to the isolated deployment."""
    isolated = prefect.read_deployment_by_name(settings.isolated_video_deployment).id
    if settings.route_max_warm_bytes == 0:
        return Routes(warm=isolated)
    warm = prefect.read_deployment_by_name(settings.process_video_deployment).id
    return Routes(warm=warm, isolated=isolated, max_warm_bytes=settings.route_max_warm_bytes)


def start_process_video_run(
    prefect: SyncPrefectClient,
    routes: Routes,
    job: JobContext,
    *,
    tags: list[str] | None = None,
    job_variables: dict[str, Any] | None = None,
) -> tuple[FlowRun, Route]:
    """Create the job's run (or get the one its idempotency key already names)."""
    route, deployment_id = routes.for_job(job)
    flow_run = briefly_retried(  # a busy API: the next uploads wait on this one
        lambda: prefect.create_flow_run_from_deployment(
            deployment_id,
            parameters={"job": job.model_dump(mode="json")},
            idempotency_key=job.idempotency_key,
            name=job.run_name,
            tags=[f"user:{job.user_id}", f"route:{route}", *(tags or [])],
            job_variables=job_variables,
        )
    )
    return flow_run, route

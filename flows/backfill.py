"""The `backfill` flow: one `process-video` run for every video under an S3 prefix.

For uploads the sensor never saw (objects older than the bucket notification, a lost
queue, a re-processing campaign). It is a thin wrapper over `video_processor.backfill`:

    list the videos → skip those with a result JSON → skip those with a run (the sensor's
    idempotency key) → start one `process-video` run each, never more than
    `max_concurrent_runs` of its own runs unfinished at a time

It starts flow runs of the deployment (not tasks in this run), so every video is its own
run in the UI, on whichever pool the deployment uses. Progress is a progress artifact
and log lines; the last artifact is a table of what it did with every video. Running it
again is harmless: what it started has a run (and later a result) and is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.runtime import flow_run as current_flow_run

from flows.runs import Routes, routes_from_settings, start_process_video_run
from flows.runtime import s3_client
from video_processor.backfill import (
    BackfillAction,
    BackfillItem,
    BackfillPlan,
    existing_results,
    list_videos,
    plan,
)
from video_processor.config import load_settings
from video_processor.models import JobContext

FINAL_STATE_TYPES = [
    StateType.COMPLETED,
    StateType.FAILED,
    StateType.CRASHED,
    StateType.CANCELLED,
]
KEYS_PER_QUERY = 200
REPORT_ARTIFACT_KEY = "backfill-report"
PROGRESS_ARTIFACT_KEY = "backfill-progress"


def runs_with_keys(prefect: SyncPrefectClient, flow_id: UUID, keys: list[str]) -> set[str]:
    """Which idempotency keys already have a run of the flow (keys are unique per flow)."""
    found: set[str] = set()
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        runs = prefect.read_flow_runs(
            flow_filter=FlowFilter(id=FlowFilterId(any_=[flow_id])),
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=chunk)),
            limit=len(chunk),
        )
        found.update(run.idempotency_key for run in runs if run.idempotency_key)
    return found


def unfinished(prefect: SyncPrefectClient, run_ids: list[UUID]) -> int:
    """How many of these runs are not in a final state yet."""
    if not run_ids:
        return 0
    return len(
        prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=run_ids),
                state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=FINAL_STATE_TYPES)),
            ),
            limit=len(run_ids),
        )
    )


def start_run(
    prefect: SyncPrefectClient,
    routes: Routes,
    job: JobContext,
    marker_tag: str,
    job_variables: dict[str, Any] | None,
) -> tuple[UUID, bool]:
    """Ask for the job's run; returns its id and whether this call created it.

    The idempotency key is the sensor's, so if the sensor (or another backfill) created
    the run in the meantime, Prefect returns that run instead of a second one. This
    backfill's own runs carry `marker_tag`, which tells the two cases apart exactly.
    """
    run, _ = start_process_video_run(
        prefect, routes, job, tags=["backfill", marker_tag], job_variables=job_variables
    )
    return run.id, marker_tag in (run.tags or [])


@flow(name="backfill", flow_run_name="backfill-{prefix}")
def backfill(
    prefix: str = "videos/",
    since: datetime | None = None,
    until: datetime | None = None,
    max_objects: int | None = None,
    dry_run: bool = False,
    max_concurrent_runs: int = 10,
    deployment: str | None = None,
    job_variables: dict[str, Any] | None = None,
    poll_interval_seconds: float = 5.0,
) -> dict[str, int]:
    """Start `process-video` runs for the videos under `prefix` that have neither a result
    nor a run.

    Args:
        prefix: S3 key prefix in the video bucket (`videos/` or `videos/{user_id}/`).
        since, until: only objects last modified in [since, until) (UTC when naive).
        max_objects: start at most this many runs; the rest wait for the next backfill.
        dry_run: list and classify only; start nothing.
        max_concurrent_runs: never more than this many of this backfill's runs unfinished.
        deployment: start every run on this `process-video` deployment (default: by size,
            as the sensor does: `PROCESS_VIDEO_DEPLOYMENT` or `ISOLATED_VIDEO_DEPLOYMENT`).
        job_variables: overrides for the started runs' infrastructure.
        poll_interval_seconds: how often to re-check runs while at the concurrency bound.
    """
    logger = get_run_logger()
    settings = load_settings()
    listing = list_videos(s3_client(), settings.video_bucket_name, prefix, since=since, until=until)
    if listing.ignored_keys:
        logger.warning(
            "%d objects under %r do not follow videos/{user_id}/{job_id}.{ext}; ignored",
            len(listing.ignored_keys),
            prefix,
        )
    results = existing_results(s3_client(), settings.result_bucket_name, listing.jobs)
    with get_client(sync_client=True) as prefect:
        if deployment is None:
            routes = routes_from_settings(prefect, settings)
            target_name = "the deployments routed to by size"
        else:
            routes = Routes(warm=prefect.read_deployment_by_name(deployment).id)
            target_name = f"`{deployment}`"
        flow_id = prefect.read_deployment(routes.warm).flow_id
        candidates = [job for job in listing.jobs if job.result_key not in results]
        run_keys = runs_with_keys(prefect, flow_id, [job.idempotency_key for job in candidates])
        the_plan = plan(
            listing.jobs,
            result_keys=results,
            run_keys=run_keys,
            dry_run=dry_run,
            max_starts=max_objects,
        )
        logger.info(
            "%d videos under s3://%s/%s: %s; %d deferred by max_objects",
            len(listing.jobs),
            settings.video_bucket_name,
            prefix,
            the_plan.counts(),
            the_plan.deferred,
        )
        to_start = len(the_plan.to_start)
        progress_id = cast(  # synchronous in a sync flow (async_dispatch)
            UUID,
            create_progress_artifact(
                progress=0.0 if to_start else 100.0,
                key=PROGRESS_ARTIFACT_KEY,
                description=f"{to_start} runs to start",
            ),
        )

        def progress(handled: int, total: int, started: int) -> None:
            update_progress_artifact(
                progress_id,
                progress=100.0 * handled / total,
                description=f"{handled} of {total} handled, {started} runs started",
            )

        items = start_runs(
            prefect,
            the_plan,
            routes,
            marker_tag=f"backfill-run:{current_flow_run.get_id()}",
            job_variables=job_variables,
            max_concurrent_runs=max(1, max_concurrent_runs),
            poll_interval_s=poll_interval_seconds,
            progress=progress,
            logger=logger,
        )
    final = BackfillPlan(items=items, deferred=the_plan.deferred)
    counts = final.counts()
    create_table_artifact(
        table=[item.row() for item in items],
        key=REPORT_ARTIFACT_KEY,
        description=(
            f"Backfill of `s3://{settings.video_bucket_name}/{prefix}` into {target_name}"
            f"{' (dry run)' if dry_run else ''}: "
            + ", ".join(f"{action} {count}" for action, count in counts.items())
            + f", deferred {final.deferred}"
        ),
    )
    logger.info("backfill done: %s; %d deferred", counts, final.deferred)
    return {**counts, "deferred": final.deferred}


def start_runs(
    prefect: SyncPrefectClient,
    the_plan: BackfillPlan,
    routes: Routes,
    *,
    marker_tag: str,
    job_variables: dict[str, Any] | None,
    max_concurrent_runs: int,
    poll_interval_s: float,
    progress: Callable[[int, int, int], None],
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> list[BackfillItem]:
    """Start the planned runs, never more than `max_concurrent_runs` of them unfinished.

    `progress(handled, to_handle, started)` is called after each run asked for.
    """
    to_start = the_plan.to_start
    started: list[UUID] = []
    items: list[BackfillItem] = []
    handled = 0
    for item in the_plan.items:
        if item.action is not BackfillAction.STARTED:
            items.append(item)
            continue
        while unfinished(prefect, started) >= max_concurrent_runs:
            time.sleep(poll_interval_s)
        run_id, created = start_run(prefect, routes, item.job, marker_tag, job_variables)
        if created:
            started.append(run_id)
            items.append(item.with_action(BackfillAction.STARTED, str(run_id)))
            logger.info("started %s for %s", run_id, item.job.key)
        else:  # the sensor (or another backfill) got there first: same key, same run
            items.append(item.with_action(BackfillAction.SKIPPED_ALREADY_RUN, str(run_id)))
            logger.info("%s already has run %s", item.job.key, run_id)
        handled += 1
        progress(handled, len(to_start), len(started))
    return items

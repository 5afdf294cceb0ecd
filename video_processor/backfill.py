"""Backfill stage logic (no Prefect): list the videos under a prefix and decide what to do.

The `backfill` flow (flows/backfill.py) is a thin wrapper: it asks Prefect which of these
jobs already have a `process-video` run (by the sensor's idempotency key), calls `plan`,
and starts the runs the plan asks for.

A video is identified exactly as the sensor identifies it: `JobContext.from_object` on
bucket, key, eTag and versionId. On a versioned bucket the listing reads object versions,
so the versionId (and with it the idempotency key) matches the one in the S3 event.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from video_processor.errors import StorageError
from video_processor.models import JobContext, S3ObjectRef
from video_processor.s3 import _mapped

UNVERSIONED = "null"  # the versionId S3 reports for objects written while unversioned


class BackfillAction(StrEnum):
    STARTED = "started"
    SKIPPED_HAS_RESULT = "skipped-has-result"
    SKIPPED_ALREADY_RUN = "skipped-already-run"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class BackfillItem:
    job: JobContext
    action: BackfillAction
    flow_run_id: str | None = None

    def with_action(self, action: BackfillAction, flow_run_id: str | None = None) -> BackfillItem:
        return replace(self, action=action, flow_run_id=flow_run_id)

    def row(self) -> dict[str, str]:
        """One row of the backfill's table artifact."""
        return {
            "key": self.job.key,
            "action": self.action.value,
            "flow_run_id": self.flow_run_id or "",
        }


@dataclass
class Listing:
    """The video jobs under a prefix, and how many objects did not follow the layout."""

    jobs: list[JobContext] = field(default_factory=list)
    ignored_keys: list[str] = field(default_factory=list)


@dataclass
class BackfillPlan:
    """What to do with each listed video; `deferred` were left for a later backfill."""

    items: list[BackfillItem]
    deferred: int = 0

    @property
    def to_start(self) -> list[BackfillItem]:
        return [item for item in self.items if item.action is BackfillAction.STARTED]

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in BackfillAction}
        for item in self.items:
            counts[item.action.value] += 1
        return counts


def _utc(moment: datetime | None) -> datetime | None:
    """Naive datetimes are taken as UTC (S3 reports LastModified in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def is_versioned(s3: Any, bucket: str) -> bool:
    """Whether the bucket has (or had) versioning: then events carry a versionId."""
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"read versioning of s3://{bucket}") from exc
    return status in {"Enabled", "Suspended"}


def _latest_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Current objects under the prefix (paginated), with VersionId on versioned buckets."""
    if is_versioned(s3, bucket):
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    yield version
    else:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def list_videos(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Listing:
    """Every video under the prefix last modified in [since, until), as the sensor's jobs."""
    since, until = _utc(since), _utc(until)
    listing = Listing()
    try:
        for item in _latest_objects(s3, bucket, prefix):
            modified: datetime = item["LastModified"]
            if (since and modified < since) or (until and modified >= until):
                continue
            version_id = item.get("VersionId")
            job = JobContext.from_object(
                S3ObjectRef(
                    bucket=bucket,
                    key=item["Key"],
                    size=item.get("Size"),
                    etag=item.get("ETag"),
                    version_id=None if version_id == UNVERSIONED else version_id,
                )
            )
            if job is None:
                listing.ignored_keys.append(item["Key"])
            else:
                listing.jobs.append(job)
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"list s3://{bucket}/{prefix}") from exc
    return listing


def existing_results(s3: Any, bucket: str, jobs: Iterable[JobContext]) -> set[str]:
    """Which of the jobs' result keys exist, with one paginated listing (not a HEAD each)."""
    wanted = {job.result_key for job in jobs}
    if not wanted:
        return set()
    # S3 prefixes are plain strings, not paths: the character-wise common prefix is right.
    prefix = os.path.commonprefix(sorted(wanted))  # noqa: RUF071
    found: set[str] = set()
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update(item["Key"] for item in page.get("Contents", []))
    except (ClientError, BotoCoreError) as exc:
        raise _mapped(exc, StorageError, f"list s3://{bucket}/{prefix}") from exc
    return wanted & found


def plan(
    jobs: Iterable[JobContext],
    *,
    result_keys: set[str],
    run_keys: set[str],
    dry_run: bool = False,
    max_starts: int | None = None,
) -> BackfillPlan:
    """Classify each job: it has a result, it has a run (idempotency key), or it needs one.

    `max_starts` caps how many runs this backfill starts (or, dry, would start); the rest
    are `deferred` to the next backfill, which skips what this one started. Re-running a
    backfill is therefore harmless and makes progress.
    """
    items: list[BackfillItem] = []
    starts = deferred = 0
    for job in jobs:
        if job.result_key in result_keys:
            items.append(BackfillItem(job, BackfillAction.SKIPPED_HAS_RESULT))
        elif job.idempotency_key in run_keys:
            items.append(BackfillItem(job, BackfillAction.SKIPPED_ALREADY_RUN))
        elif max_starts is not None and starts >= max_starts:
            deferred += 1
        else:
            starts += 1
            action = BackfillAction.DRY_RUN if dry_run else BackfillAction.STARTED
            items.append(BackfillItem(job, action))
    return BackfillPlan(items=items, deferred=deferred)

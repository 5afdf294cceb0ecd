"""Backfill stage logic against a moto server: listing, date range, versions, the plan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from video_processor.backfill import (
    BackfillAction,
    existing_results,
    list_videos,
    plan,
)
from video_processor.models import JobContext, S3ObjectRef


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"videos-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    return name


def put(s3_client, bucket: str, *keys: str) -> None:
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_listing_pages_through_the_prefix_and_matches_the_sensors_jobs(s3_client, bucket):
    keys = [f"videos/u1/j{i:04d}.mp4" for i in range(1005)]  # more than one page (1000)
    put(s3_client, bucket, *keys, "videos/u2/other.mp4", "videos/u1/notes/readme.txt")

    listing = list_videos(s3_client, bucket, "videos/u1/")

    assert [job.key for job in listing.jobs] == keys
    assert listing.ignored_keys == ["videos/u1/notes/readme.txt"]
    head = s3_client.head_object(Bucket=bucket, Key=keys[0])
    # What the sensor builds from the S3 event (unquoted eTag, no versionId).
    from_event = JobContext.from_object(
        S3ObjectRef(bucket=bucket, key=keys[0], etag=head["ETag"].strip('"'))
    )
    assert from_event is not None
    assert listing.jobs[0].idempotency_key == from_event.idempotency_key


def test_versioned_bucket_lists_the_latest_version_with_its_version_id(s3_client, bucket):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put(s3_client, bucket, "videos/u1/a.mp4")
    s3_client.put_object(Bucket=bucket, Key="videos/u1/a.mp4", Body=b"second upload")
    put(s3_client, bucket, "videos/u1/gone.mp4")
    s3_client.delete_object(Bucket=bucket, Key="videos/u1/gone.mp4")
    latest = s3_client.head_object(Bucket=bucket, Key="videos/u1/a.mp4")["VersionId"]

    listing = list_videos(s3_client, bucket, "videos/")

    assert [(job.key, job.version_id) for job in listing.jobs] == [("videos/u1/a.mp4", latest)]


def test_date_range_is_since_inclusive_until_exclusive(s3_client, bucket):
    put(s3_client, bucket, "videos/u1/a.mp4")
    modified = s3_client.head_object(Bucket=bucket, Key="videos/u1/a.mp4")["LastModified"]
    naive = modified.astimezone(UTC).replace(tzinfo=None)

    assert len(list_videos(s3_client, bucket, "videos/", since=naive).jobs) == 1
    assert len(list_videos(s3_client, bucket, "videos/", until=modified).jobs) == 0
    later = modified + timedelta(seconds=1)
    assert len(list_videos(s3_client, bucket, "videos/", since=later).jobs) == 0
    assert len(list_videos(s3_client, bucket, "videos/", until=later).jobs) == 1
    assert len(list_videos(s3_client, bucket, "videos/", until=datetime(2000, 1, 1)).jobs) == 0


def test_existing_results_finds_only_the_jobs_results(s3_client, bucket):
    put(s3_client, bucket, "videos/u1/a.mp4", "videos/u1/b.mp4", "videos/u1/a1.mp4")
    jobs = list_videos(s3_client, bucket, "videos/u1/").jobs
    put(s3_client, bucket, "results/u1/a.json", "results/u1/a1.json.tmp", "results/u9/b.json")

    assert existing_results(s3_client, bucket, jobs) == {"results/u1/a.json"}
    assert existing_results(s3_client, bucket, []) == set()


def job(name: str) -> JobContext:
    found = JobContext.from_object(S3ObjectRef(bucket="b", key=f"videos/u/{name}.mp4", etag="e"))
    assert found is not None
    return found


def test_plan_skips_results_then_runs_and_caps_starts():
    jobs = [job(name) for name in ("a", "b", "c", "d", "e")]
    result = plan(
        jobs,
        result_keys={jobs[0].result_key},
        run_keys={jobs[1].idempotency_key, jobs[0].idempotency_key},
        max_starts=2,
    )
    assert [(item.job.job_id, item.action) for item in result.items] == [
        ("a", BackfillAction.SKIPPED_HAS_RESULT),
        ("b", BackfillAction.SKIPPED_ALREADY_RUN),
        ("c", BackfillAction.STARTED),
        ("d", BackfillAction.STARTED),
    ]
    assert result.deferred == 1
    assert [item.job.job_id for item in result.to_start] == ["c", "d"]


def test_dry_run_plans_without_starting():
    result = plan([job("a"), job("b")], result_keys=set(), run_keys=set(), dry_run=True)
    assert {item.action for item in result.items} == {BackfillAction.DRY_RUN}
    assert result.to_start == []
    assert result.counts()["dry-run"] == 2

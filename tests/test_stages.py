"""Stages over real S3 (moto server) and the real FFmpeg: no Prefect involved."""

import uuid
from pathlib import Path

import pytest

from local_stack.sample_video import make_corrupt_video, make_tone_video, make_video_without_audio
from video_processor import stages
from video_processor.config import AudioProfile
from video_processor.errors import AudioError, DownloadError
from video_processor.models import AudioOptions, JobContext

OPTIONS = AudioOptions(
    profile=AudioProfile.SEED,
    chunk_seconds=10,
    ffmpeg_timeout_s=60,
    max_video_bytes=10**9,
    max_video_duration_s=3600,
)


@pytest.fixture
def buckets(s3_client) -> tuple[str, str]:
    names = (f"video-{uuid.uuid4().hex[:8]}", f"result-{uuid.uuid4().hex[:8]}")
    for name in names:
        s3_client.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
        )
    return names


def upload(s3_client, bucket: str, path: Path) -> JobContext:
    key = f"videos/u1/{uuid.uuid4().hex[:8]}.mp4"
    s3_client.upload_file(str(path), bucket, key)
    return JobContext(
        bucket=bucket,
        key=key,
        user_id="u1",
        job_id=key.split("/")[-1][:-4],
        extension="mp4",
        etag="e",
    )


def test_prepare_audio_stores_chunks_under_the_work_prefix(s3_client, buckets, tmp_path):
    video_bucket, result_bucket = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=23))

    manifest = stages.prepare_audio(s3_client, job, work_bucket=result_bucket, options=OPTIONS)

    assert [chunk.index for chunk in manifest.chunks] == [0, 1, 2]
    assert manifest.audio_duration_s == pytest.approx(23, abs=0.2)
    assert manifest.audio_filter.startswith("seed:")
    stored = s3_client.list_objects_v2(Bucket=result_bucket, Prefix=job.work_prefix)
    assert sorted(item["Key"] for item in stored["Contents"]) == [c.key for c in manifest.chunks]
    assert all(c.key.startswith(job.work_prefix) for c in manifest.chunks)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_video_bytes": 1000}, "over the limit of 1000 bytes"),
        ({"max_video_duration_s": 2}, "over the limit of 2 s"),
    ],
    ids=["size", "duration"],
)
def test_limits_stop_the_job_before_the_work(s3_client, buckets, tmp_path, limits, message):
    video_bucket, result_bucket = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=5))
    with pytest.raises(AudioError, match=message):
        stages.prepare_audio(
            s3_client, job, work_bucket=result_bucket, options=OPTIONS.model_copy(update=limits)
        )
    assert s3_client.list_objects_v2(Bucket=result_bucket).get("KeyCount", 0) == 0


def test_missing_object_is_a_permanent_download_failure(s3_client, buckets):
    video_bucket, result_bucket = buckets
    job = JobContext(
        bucket=video_bucket, key="videos/u1/gone.mp4", user_id="u1", job_id="gone", extension="mp4"
    )
    with pytest.raises(DownloadError, match="404") as caught:
        stages.prepare_audio(s3_client, job, work_bucket=result_bucket, options=OPTIONS)
    assert caught.value.code == "S3_DOWNLOAD_FAILED" and not caught.value.retryable


def test_probe_upload_reads_the_duration_through_a_presigned_url(s3_client, buckets, tmp_path):
    video_bucket, result_bucket = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=7))

    manifest = stages.probe_upload(s3_client, job, OPTIONS)

    assert manifest.chunks == [] and manifest.download_ms == 0
    assert manifest.video_duration_s == pytest.approx(7, abs=0.2)
    assert manifest.audio_duration_s == manifest.video_duration_s  # the engine hears it all
    assert s3_client.list_objects_v2(Bucket=result_bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (lambda p: make_video_without_audio(p, seconds=2), OPTIONS, "no audio stream"),
        (make_corrupt_video, OPTIONS, "not a decodable media file"),
        (
            lambda p: make_tone_video(p, seconds=5),
            OPTIONS.model_copy(update={"max_video_duration_s": 2}),
            "over the limit of 2 s",
        ),
    ],
    ids=["no-audio", "corrupt", "duration"],
)
def test_probe_upload_applies_the_same_checks(s3_client, buckets, tmp_path, make, options, message):
    video_bucket, _ = buckets
    path = tmp_path / "v.mp4"
    make(path)
    job = upload(s3_client, video_bucket, path)
    with pytest.raises(AudioError, match=message) as caught:
        stages.probe_upload(s3_client, job, options)
    assert "X-Amz-Signature" not in caught.value.message  # the URL is never echoed

"""Stages over real S3 (moto server) and the real FFmpeg: no Prefect involved."""

import json
import uuid
from pathlib import Path

import pytest

from local_stack.fake_clova_speech import (
    DEFAULT_INVOKE_PATH,
    ClovaSpeechConfig,
    start_fake_clova_speech,
)
from local_stack.sample_video import make_corrupt_video, make_tone_video, make_video_without_audio
from video_processor import stages
from video_processor.config import AudioProfile, ClovaSpeechOptions
from video_processor.errors import AudioError, DownloadError
from video_processor.models import (
    AudioChunk,
    AudioManifest,
    AudioOptions,
    ChunkTranscript,
    JobContext,
    StageTimings,
    Summary,
    TimeRange,
    Transcript,
    TranscriptSegment,
)
from video_processor.stt.base import WholeMedia
from video_processor.stt.clova_speech import ClovaSpeechLongForm

OPTIONS = AudioOptions(
    profile=AudioProfile.DENOISE,
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
    assert manifest.audio_filter.startswith("denoise:")
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


def test_an_unchunked_audio_stage_only_probes_the_upload_through_a_presigned_url(
    s3_client, buckets, tmp_path
):
    video_bucket, result_bucket = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=7))
    whole_media = OPTIONS.model_copy(update={"chunked": False})

    manifest = stages.prepare_audio(s3_client, job, work_bucket=result_bucket, options=whole_media)

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


def test_prepare_audio_records_where_each_chunk_has_sound(s3_client, buckets, tmp_path):
    video_bucket, result_bucket = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=12))

    manifest = stages.prepare_audio(s3_client, job, work_bucket=result_bucket, options=OPTIONS)

    for chunk in manifest.chunks:  # a tone is sound throughout, and not broadband noise
        assert sum(piece.duration_s for piece in chunk.sound) == pytest.approx(
            chunk.duration_s, abs=0.05
        )
        assert not chunk.noisy


class SingleDecodeEngine:
    """A stand-in STT engine with one way to decode (like CLOVA CSR): a fixed answer."""

    name = "scripted"
    language = "ko"

    def __init__(self, first: list[TranscriptSegment]) -> None:
        self.first = first

    def transcribe_chunk(self, audio_path: Path, chunk: AudioChunk) -> list[TranscriptSegment]:
        return self.first


class ScriptedEngine(SingleDecodeEngine):
    """A stand-in engine that also has a fallback decode, with its own fixed answer."""

    def __init__(self, first: list[TranscriptSegment], fallback: list[TranscriptSegment]) -> None:
        super().__init__(first)
        self.fallback, self.fallback_calls = fallback, 0

    def fallback_transcribe_chunk(
        self, audio_path: Path, chunk: AudioChunk
    ) -> list[TranscriptSegment]:
        self.fallback_calls += 1
        return self.fallback


CHUNK = AudioChunk(
    index=2,
    key="k",
    start_s=110.0,
    duration_s=55.0,
    size_bytes=1,
    sound=[TimeRange(start_s=110.0, end_s=140.0), TimeRange(start_s=140.5, end_s=165.0)],
)
SPEECH = [
    TranscriptSegment(start_s=110.0 + 5 * i, end_s=115.0 + 5 * i, text=f"문장 {i}")
    for i in range(11)
]


def test_a_chunk_with_sound_but_no_text_gets_the_fallback_decode():
    engine = ScriptedEngine(first=[], fallback=SPEECH)
    result = stages.transcribe_checked(engine, Path("unused.wav"), CHUNK)
    assert engine.fallback_calls == 1
    assert result.fallback_decoded and result.segments == SPEECH and result.gaps == []


def test_sound_still_without_text_after_the_fallback_is_reported_as_a_gap():
    engine = ScriptedEngine(first=[], fallback=[])
    result = stages.transcribe_checked(engine, Path("unused.wav"), CHUNK)
    assert result.segments == [] and not result.fallback_decoded
    assert result.gaps == [TimeRange(start_s=110.0, end_s=165.0)]


def test_an_engine_without_a_fallback_reports_the_gap_of_a_partly_heard_chunk():
    # A CLOVA CSR-like engine: no second decode; the first 20 s heard, the rest not.
    heard = [TranscriptSegment(start_s=110.0, end_s=130.0, text="앞부분만 들렸습니다")]
    result = stages.transcribe_checked(SingleDecodeEngine(heard), Path("x.wav"), CHUNK)
    assert result.gaps == [TimeRange(start_s=131.0, end_s=165.0)]


def test_pauses_and_short_unheard_bits_are_not_gaps():
    assert stages.find_gaps(CHUNK.sound, SPEECH) == []
    sparse = [s for s in SPEECH if s.start_s != 135.0]  # 5 s unheard, padded by 1 s each side
    assert stages.find_gaps(CHUNK.sound, sparse) == []


def test_auto_language_takes_the_language_heard_longest_and_gaps_reach_the_result():
    english = [TranscriptSegment(start_s=0, end_s=50, text="hello", language="en")]
    korean = [TranscriptSegment(start_s=55, end_s=60, text="안녕", language="ko")]
    gap = TimeRange(start_s=60.0, end_s=110.0)
    chunks = [CHUNK.model_copy(update={"noisy": True}), CHUNK.model_copy(update={"index": 3})]
    parts = [ChunkTranscript(segments=english), ChunkTranscript(segments=korean, gaps=[gap])]
    transcript = stages.join_chunks("local", "auto", chunks, parts)
    assert transcript.language == "en"
    assert transcript.gaps == [gap] and transcript.noisy_share == 0.5
    assert stages.join_chunks("local", "ko", chunks, parts).language == "ko"


def test_the_result_carries_confidence_language_gaps_and_flags():
    job = JobContext(bucket="b", key="videos/u/j.mp4", user_id="u", job_id="j", extension="mp4")
    manifest = AudioManifest(chunks=[CHUNK], video_duration_s=165, audio_filter="none")
    gap = TimeRange(start_s=140.0, end_s=165.0)
    segments = [
        TranscriptSegment(start_s=110, end_s=120, text="잘 들린 문장", confidence=0.9),
        TranscriptSegment(start_s=120, end_s=140, text="흐릿한 문장", confidence=0.2),
    ]
    transcript = Transcript(engine="local", language="ko", segments=segments, gaps=[gap])
    summary = Summary(engine="local", model="extractive", text="요약")
    result = stages.build_result(job, manifest, transcript, summary, StageTimings(), 5)
    stored = json.loads(result.model_dump_json())
    assert stored["schema_version"] == "1.3"
    assert [s["confidence"] for s in stored["transcript"]["segments"]] == [0.9, 0.2]
    assert stored["meta"]["low_confidence_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert stored["meta"]["low_confidence"] is True
    assert stored["meta"]["gaps"] == [{"start_s": 140.0, "end_s": 165.0}]
    assert stored["meta"]["flags"] == ["gaps", "low_confidence"]
    assert stored["meta"]["language"] == "ko"
    clean = transcript.model_copy(update={"gaps": [], "segments": segments[:1]})
    meta = stages.build_result(job, manifest, clean, summary, StageTimings(), 5).meta
    assert (meta.flags, meta.low_confidence, meta.low_confidence_share) == ([], False, 0.0)


def test_loop_segments_kept_from_the_summariser_flag_the_result():
    job = JobContext(bucket="b", key="videos/u/j.mp4", user_id="u", job_id="j", extension="mp4")
    manifest = AudioManifest(chunks=[CHUNK], video_duration_s=165, audio_filter="none")
    looped = [*SPEECH, *[SPEECH[-1].model_copy(update={"start_s": 170.0, "end_s": 171.0})] * 2]
    transcript = Transcript(engine="local", language="ko", segments=looped)
    summary = Summary(engine="local", model="extractive", text="요약")
    meta = stages.build_result(job, manifest, transcript, summary, StageTimings(), 5).meta
    assert meta.flags == ["loops"]


@pytest.mark.parametrize("send_url", [True, False], ids=["presigned-url", "upload"])
def test_a_whole_media_engine_hears_the_upload_by_url_or_from_here(
    s3_client, buckets, tmp_path, send_url
):
    video_bucket, _ = buckets
    job = upload(s3_client, video_bucket, make_tone_video(tmp_path / "v.mp4", seconds=3))
    config = ClovaSpeechConfig(secret_key="k", text="전체 영상")
    with start_fake_clova_speech(config) as fake:
        engine = ClovaSpeechLongForm(
            invoke_url=f"{fake.url}{DEFAULT_INVOKE_PATH}",
            secret_key="k",
            options=ClovaSpeechOptions(send_url=send_url),
        )
        transcript = stages.transcribe_media(s3_client, engine, job, duration_s=3.0)
        by_path = fake.service.stats.snapshot()["by_path"]
    assert isinstance(engine, WholeMedia)
    assert transcript.engine == "clova-speech" and "전체 영상" in transcript.text
    sent = "/recognizer/url" if send_url else "/recognizer/upload"
    assert isinstance(by_path, dict) and any(path.endswith(sent) for path in by_path)

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from video_processor.config import AudioProfile, LlmEngineName, Settings, SttEngineName
from video_processor.errors import AudioError, ErrorCode
from video_processor.models import (
    AudioChunk,
    AudioManifest,
    AudioOptions,
    CallbackBody,
    CallbackMeta,
    ChunkTranscript,
    DoneCallback,
    FailedCallback,
    JobContext,
    KeyPoint,
    LlmUsage,
    ResultDocument,
    ResultKeys,
    ResultMeta,
    RunPlan,
    S3ObjectRef,
    StageTimings,
    Summary,
    TimeRange,
    Transcript,
    TranscriptSegment,
)
from video_processor.stages import failed_callback

JOB = JobContext(bucket="b", key="videos/u/j.mp4", user_id="u", job_id="j", extension="mp4")


@pytest.mark.parametrize(
    "key",
    [
        "videos/u/j",  # no extension
        "videos/u/sub/j.mp4",  # one level too deep
        "videos/../j.mp4",
        "/videos/u/j.mp4",
        "uploads/u/j.mp4",
        "videos/u/j.mp4/",
        "videos/u/" + "j" * 200 + ".mp4",
    ],
)
def test_keys_outside_the_video_layout_make_no_job(key: str):
    assert JobContext.from_object(S3ObjectRef(bucket="b", key=key)) is None


def test_quoted_and_unquoted_etags_make_the_same_job():
    quoted = JobContext.from_object(S3ObjectRef(bucket="b", key="videos/u/j.mp4", etag='"e1"'))
    plain = JobContext.from_object(S3ObjectRef(bucket="b", key="videos/u/j.mp4", etag="e1"))
    assert quoted is not None and plain is not None
    assert quoted.idempotency_key == plain.idempotency_key


def test_done_callback_has_exactly_the_contract_fields():
    body = DoneCallback(
        s3_bucket="b",
        s3_key="k",
        transcript="t",
        summary="s",
        result_s3_key="r",
        meta=CallbackMeta(
            duration_ms=1,
            model="m",
            stt_engine="local",
            video_duration=1.5,
            audio_quality="denoise:afftdn",
        ),
    ).model_dump(mode="json")
    assert set(body) == {
        "status",
        "s3_bucket",
        "s3_key",
        "transcript",
        "summary",
        "result_s3_key",
        "meta",
    }
    assert body["status"] == "DONE"
    assert set(body["meta"]) == {
        "duration_ms",
        "model",
        "stt_engine",
        "video_duration",
        "audio_quality",
        "srt_s3_key",
        "vtt_s3_key",
    }


def test_failed_callback_carries_the_error_code_of_the_exception():
    body = failed_callback(JOB, AudioError("the upload has no audio stream"), fallback="x")
    assert body.model_dump(mode="json") == {
        "status": "FAILED",
        "s3_bucket": "b",
        "s3_key": "videos/u/j.mp4",
        "error_code": "FFMPEG_FAILED",
        "error_message": "the upload has no audio stream",
    }


def test_crash_without_exception_is_an_unknown_error_with_the_fallback_message():
    body = failed_callback(JOB, None, fallback="flow run Crashed")
    assert body.error_code is ErrorCode.UNKNOWN_ERROR
    assert body.error_message == "flow run Crashed"


def test_callback_models_refuse_unknown_fields():
    with pytest.raises(ValidationError):
        DoneCallback.model_validate({"status": "DONE", "s3_bucket": "b", "extra": 1})


def test_transcript_text_joins_segments_in_order():
    transcript = Transcript(
        engine="e",
        language="ko",
        segments=[
            TranscriptSegment(start_s=0, end_s=1, text="안녕하세요"),
            TranscriptSegment(start_s=1, end_s=2, text=""),
            TranscriptSegment(start_s=2, end_s=3, text="반갑습니다"),
        ],
    )
    assert transcript.text == "안녕하세요 반갑습니다"


@pytest.mark.parametrize(
    "key",
    ["videos//j.mp4", "videos/u/.mp4", "videos/u/j.", "videos/u/j.mp4\n", "videos/u/j.toolongext"],
)
def test_keys_with_an_empty_part_make_no_job(key: str):
    assert JobContext.from_object(S3ObjectRef(bucket="b", key=key)) is None


def test_a_job_is_named_and_stored_after_its_key():
    obj = S3ObjectRef(bucket="b", key="videos/user-1/job_2.MP4", size=7, etag="e", version_id="v")
    job = JobContext.from_object(obj)
    assert job is not None
    assert job == JobContext(
        bucket="b",
        key="videos/user-1/job_2.MP4",
        user_id="user-1",
        job_id="job_2",
        extension="mp4",
        size=7,
        etag="e",
        version_id="v",
    )
    assert job.run_name == "job-job_2"
    assert job.result_key == "results/user-1/job_2.json"
    assert ResultKeys.for_job(job) == ResultKeys(
        result="results/user-1/job_2.json",
        srt="results/user-1/job_2.srt",
        vtt="results/user-1/job_2.vtt",
    )
    version = hashlib.sha256(b"v").hexdigest()[:16]
    assert job.work_prefix == f"work/user-1/job_2/{version}/"
    short = JobContext.from_object(obj.model_copy(update={"key": "videos/u/j.mp4"}))
    assert short is not None and (short.user_id, short.job_id) == ("u", "j")


def sha(*parts: str) -> str:
    return "video:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def test_the_idempotency_key_is_bucket_key_and_version_then_etag():
    job = JOB.model_copy(update={"etag": "e1", "version_id": "v1"})
    assert job.idempotency_key == sha("b", "videos/u/j.mp4", "v1")
    unversioned = job.model_copy(update={"version_id": None})
    assert unversioned.idempotency_key == sha("b", "videos/u/j.mp4", "e1")
    # Two uploads without a versionId are two runs: the eTag tells them apart.
    assert (
        unversioned.idempotency_key
        != job.model_copy(update={"version_id": None, "etag": "e2"}).idempotency_key
    )
    assert JOB.idempotency_key == sha("b", "videos/u/j.mp4", "unversioned")
    assert JOB.version_tag == "unversioned"


def test_s3_object_etags_lose_their_quotes():
    assert S3ObjectRef(bucket="b", key="k", etag='"e1"').etag == "e1"
    assert S3ObjectRef(bucket="b", key="k", etag="").etag == ""
    assert S3ObjectRef(bucket="b", key="k").etag is None


def test_transcript_segments_are_numbered_unless_they_carry_ids():
    segments = [
        TranscriptSegment(start_s=0, end_s=1, text="가"),
        TranscriptSegment(start_s=1, end_s=2, text="나", id=7),
    ]
    transcript = Transcript(engine="e", language="ko", segments=segments)
    assert [s.id for s in transcript.segments] == [0, 7]
    assert transcript.segment_by_id() == {0: transcript.segments[0], 7: transcript.segments[1]}
    with pytest.raises(ValidationError, match="segment ids must be unique"):
        Transcript(engine="e", language="ko", segments=[segments[1], segments[1]])


def test_confidence_and_loop_signals_at_their_thresholds():
    def segment(**fields: float) -> TranscriptSegment:
        return TranscriptSegment(start_s=0, end_s=1, text="가", **fields)

    assert segment(confidence=0.36).low_confidence
    assert not segment(confidence=0.37).low_confidence
    assert not segment().low_confidence
    assert segment(compression_ratio=2.41).engine_says_loop
    assert not segment(compression_ratio=2.4).engine_says_loop
    assert not segment().engine_says_loop


def test_low_confidence_share_weighs_rated_speech_by_time():
    segments = [
        TranscriptSegment(start_s=0, end_s=1, text="가", confidence=0.1),
        TranscriptSegment(start_s=1, end_s=4, text="나", confidence=0.9),
        TranscriptSegment(start_s=4, end_s=9, text="다"),
        TranscriptSegment(start_s=9, end_s=19, text="", confidence=0.1),
        TranscriptSegment(start_s=30, end_s=20, text="라", confidence=0.1),
    ]
    assert Transcript(engine="e", language="ko", segments=segments).low_confidence_share == 0.25
    assert Transcript(engine="e", language="ko", segments=segments[2:4]).low_confidence_share == 0.0


def test_durations_and_token_totals():
    assert TimeRange(start_s=2, end_s=5.5).duration_s == 3.5
    assert TimeRange(start_s=5, end_s=2).duration_s == 0.0
    chunk = AudioChunk(index=0, key="k", start_s=0, duration_s=2.5, size_bytes=1)
    manifest = AudioManifest(chunks=[chunk, chunk], video_duration_s=9.0, audio_filter="f")
    assert manifest.audio_duration_s == 5.0
    assert manifest.model_copy(update={"chunks": []}).audio_duration_s == 9.0
    usage = LlmUsage(
        llm_calls=1,
        token_count_calls=2,
        input_tokens=3,
        output_tokens=4,
        cache_read_input_tokens=5,
        cache_creation_input_tokens=6,
    )
    assert usage.total_tokens == 18
    assert usage.plus(usage) == LlmUsage(
        llm_calls=2,
        token_count_calls=4,
        input_tokens=6,
        output_tokens=8,
        cache_read_input_tokens=10,
        cache_creation_input_tokens=12,
    )


def test_a_run_plan_takes_the_audio_options_from_the_settings():
    settings = Settings(
        audio_profile="none",
        audio_chunk_seconds=30,
        ffmpeg_timeout_seconds=40,
        max_video_bytes=50,
        max_video_duration_seconds=60,
    )
    assert AudioOptions.from_settings(settings) == AudioOptions(
        profile=AudioProfile("none"),
        chunk_seconds=30,
        ffmpeg_timeout_s=40,
        max_video_bytes=50,
        max_video_duration_s=60,
    )


ZERO_USAGE = {
    "llm_calls": 0,
    "token_count_calls": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}


def test_what_a_result_document_holds_by_default():
    transcript = Transcript(engine="e", language="ko", segments=[])
    assert (transcript.gaps, transcript.noisy_share) == ([], 0.0)
    assert LlmUsage().model_dump() == ZERO_USAGE
    summary = Summary(engine="e", model="m", text="t")
    assert summary.model_dump() == {
        "engine": "e",
        "model": "m",
        "text": "t",
        "title": "",
        "key_points": [],
        "keywords": [],
        "language": "",
        "strategy": "single-call",
        "chunks": 1,
        "input_tokens": 0,
        "output_tokens": 0,
        "usage": ZERO_USAGE,
    }
    for strategy in ("single-call", "map-reduce", "extractive"):
        chosen = {"engine": "e", "model": "m", "text": "t", "strategy": strategy}
        assert Summary.model_validate(chosen).strategy == strategy
    meta = ResultMeta(
        duration_ms=1,
        model="m",
        stt_engine="s",
        video_duration=1.0,
        audio_quality="q",
        stages=StageTimings(),
    )
    assert meta.model_dump() == {
        "duration_ms": 1,
        "model": "m",
        "stt_engine": "s",
        "video_duration": 1.0,
        "audio_quality": "q",
        "stages": {"download_ms": 0, "ffmpeg_ms": 0, "stt_ms": 0, "llm_ms": 0},
        "usage": {
            "audio_seconds_to_stt": 0.0,
            "stt_requests": 0,
            "llm_calls": 0,
            "llm_input_tokens": 0,
            "llm_output_tokens": 0,
            "llm_cache_read_tokens": 0,
            "llm_cache_write_tokens": 0,
            "task_retries": 0,
        },
        "language": "",
        "gaps": [],
        "low_confidence": False,
        "low_confidence_share": 0.0,
        "flags": [],
    }
    document = ResultDocument(
        job_id="j",
        user_id="u",
        s3_bucket="b",
        s3_key="k",
        transcript=transcript,
        transcript_text="",
        summary=summary,
        meta=meta,
    )
    assert document.schema_version == "1.3"
    assert abs(document.created_at - datetime.now(UTC)) < timedelta(hours=1)


def test_what_the_audio_stage_and_engines_leave_unset():
    segment = TranscriptSegment(start_s=0, end_s=1, text="가")
    assert segment.model_dump() == {
        "start_s": 0.0,
        "end_s": 1.0,
        "text": "가",
        "speaker": None,
        "id": None,
        "confidence": None,
        "language": None,
        "compression_ratio": None,
        "no_speech_prob": None,
    }
    chunk = AudioChunk(index=0, key="k", start_s=0, duration_s=1, size_bytes=1)
    assert (chunk.sound, chunk.noisy) == ([], False)
    manifest = AudioManifest(chunks=[], video_duration_s=1, audio_filter="f")
    assert (manifest.download_ms, manifest.ffmpeg_ms) == (0, 0)
    assert ChunkTranscript(segments=[]).model_dump() == {
        "segments": [],
        "gaps": [],
        "fallback_decoded": False,
    }
    obj = S3ObjectRef(bucket="b", key="k")
    assert (obj.size, obj.etag, obj.version_id, obj.event_time) == (None, None, None, None)
    assert obj.event_name == "ObjectCreated:Put"
    assert S3ObjectRef(bucket="b", key="k", etag='"Xe1X"').etag == "Xe1X"
    assert JOB.size is None and JOB.etag is None and JOB.version_id is None


def test_callback_bodies_parse_by_their_status():
    meta = CallbackMeta(
        duration_ms=1, model="m", stt_engine="s", video_duration=1.0, audio_quality="q"
    )
    assert (meta.srt_s3_key, meta.vtt_s3_key) == (None, None)
    body: TypeAdapter[CallbackBody] = TypeAdapter(CallbackBody)
    done = {
        "status": "DONE",
        "s3_bucket": "b",
        "s3_key": "k",
        "transcript": "t",
        "summary": "s",
        "result_s3_key": "r",
        "meta": meta.model_dump(),
    }
    failed = {
        "status": "FAILED",
        "s3_bucket": "b",
        "s3_key": "k",
        "error_code": "UNKNOWN_ERROR",
        "error_message": "m",
    }
    assert isinstance(body.validate_python(done), DoneCallback)
    assert isinstance(body.validate_python(failed), FailedCallback)
    assert FailedCallback.model_validate(failed).status == "FAILED"
    with pytest.raises(ValidationError, match="union_tag_invalid"):
        body.validate_python({**failed, "status": "RETRY"})


def test_models_are_frozen_and_refuse_unknown_fields():
    with pytest.raises(ValidationError):
        JOB.job_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        JobContext.model_validate({**JOB.model_dump(), "priority": 1})


def test_models_refuse_what_the_contract_forbids():
    with pytest.raises(ValidationError):
        KeyPoint(text="t", segment_ids=[], start_s=0)
    with pytest.raises(ValidationError):
        KeyPoint.model_validate({"text": "t", "segment_ids": [1]})
    assert KeyPoint(text="t", segment_ids=[1], start_s=0).segment_ids == [1]
    with pytest.raises(ValidationError):
        RunPlan(
            stt_engine=SttEngineName.LOCAL,
            stt_language="ko",
            llm_engine=LlmEngineName.LOCAL,
            audio=AudioOptions.from_settings(Settings()),
            chunk_concurrency=0,
        )
    with pytest.raises(
        ValidationError, match=r"Value error, transcript segment ids must be unique \["
    ):
        segment = TranscriptSegment(start_s=0, end_s=1, text="가", id=1)
        Transcript(engine="e", language="ko", segments=[segment, segment])


def test_low_confidence_share_is_rounded_and_counts_short_speech():
    segments = [
        TranscriptSegment(start_s=0, end_s=0.3, text="가", confidence=0.1),
        TranscriptSegment(start_s=0.3, end_s=0.9, text="나", confidence=0.9),
    ]
    assert Transcript(engine="e", language="ko", segments=segments).low_confidence_share == 0.333

import pytest
from pydantic import ValidationError

from video_processor.errors import AudioError, ErrorCode
from video_processor.models import (
    CallbackMeta,
    DoneCallback,
    JobContext,
    S3ObjectRef,
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

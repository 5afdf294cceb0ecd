"""The pipeline's stages as plain functions over S3 keys and models (no Prefect here).

Nothing local crosses a stage boundary: each stage reads its inputs from S3 or from
models, works in a private temporary directory and removes it on every path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from video_processor import audio, s3, subtitles
from video_processor.errors import AudioError, PipelineError, error_code_of
from video_processor.logs import get_logger, job_fields, stage
from video_processor.models import (
    AudioChunk,
    AudioManifest,
    AudioOptions,
    CallbackMeta,
    DoneCallback,
    FailedCallback,
    JobContext,
    ResultDocument,
    ResultKeys,
    ResultMeta,
    StageTimings,
    Summary,
    Transcript,
    TranscriptSegment,
    UsageLedger,
)
from video_processor.stt.base import SpeechToText
from video_processor.stt.clova_speech import ClovaSpeechLongForm, MediaSource

logger = get_logger("stages")
ERROR_MESSAGE_MAX_CHARS = 1000
PRESIGNED_URL_TTL_S = 6 * 3600  # CLOVA Speech may fetch late in a long async job
PROBE_URL_TTL_S = 300
SRT_CONTENT_TYPE = "application/x-subrip; charset=utf-8"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"


@contextmanager
def private_workspace() -> Iterator[Path]:
    """A fresh directory only this process can read, with an unpredictable name."""
    with tempfile.TemporaryDirectory(prefix="avp-") as directory:
        yield Path(directory)


def prepare_audio(
    client: Any, job: JobContext, *, work_bucket: str, options: AudioOptions
) -> AudioManifest:
    """Download the video, extract clean mono 16 kHz audio chunks and store them in S3."""
    context = job_fields(job.job_id, job.user_id)
    _check_size(client, job, options)
    with private_workspace() as workspace:
        video = workspace / "input.media"
        with stage(logger, "DOWNLOAD", context, s3_key=job.key) as done:
            done["size_bytes"] = s3.download_file(client, job.bucket, job.key, video)
        download_ms = done["duration_ms"]

        chain, label = audio.filter_chain(options.profile)
        with stage(logger, "FFMPEG", context, audio_filter=label) as done:
            info = _checked(audio.probe_media(video), options)
            chunks_dir = workspace / "chunks"
            chunks_dir.mkdir()
            extracted = audio.extract_audio_chunks(
                video,
                chunks_dir,
                chain=chain,
                chunk_seconds=options.chunk_seconds,
                timeout_s=options.ffmpeg_timeout_s,
            )
            done.update(
                video_duration_s=info.duration_s,
                chunks=len(extracted),
                cuts_at_silence=sum(piece.cut_at_silence for piece in extracted),
            )
        ffmpeg_ms = done["duration_ms"]

        stored = []
        for index, piece in enumerate(extracted):
            key = f"{job.work_prefix}audio/{index:05d}.wav"
            s3.upload_file(client, piece.path, work_bucket, key, "audio/wav")
            stored.append(
                AudioChunk(
                    index=index,
                    key=key,
                    start_s=piece.start_s,
                    duration_s=piece.duration_s,
                    size_bytes=piece.path.stat().st_size,
                )
            )
    return AudioManifest(
        chunks=stored,
        video_duration_s=info.duration_s,
        audio_filter=label,
        download_ms=download_ms,
        ffmpeg_ms=ffmpeg_ms,
    )


def probe_upload(client: Any, job: JobContext, options: AudioOptions) -> AudioManifest:
    """For an engine that fetches the video itself: the caps and the duration, probed
    through a presigned URL. Nothing is downloaded and no chunk is made."""
    context = job_fields(job.job_id, job.user_id)
    _check_size(client, job, options)
    with stage(logger, "FFMPEG", context, audio_filter="none", probe_only=True) as done:
        url = s3.presigned_get_url(client, job.bucket, job.key, PROBE_URL_TTL_S)
        info = _checked(audio.probe_media(url), options)
        done.update(video_duration_s=info.duration_s, chunks=0)
    return AudioManifest(
        chunks=[],
        video_duration_s=info.duration_s,
        audio_filter="none",
        ffmpeg_ms=done["duration_ms"],
    )


def _check_size(client: Any, job: JobContext, options: AudioOptions) -> None:
    size = s3.object_size(client, job.bucket, job.key)
    if size > options.max_video_bytes:
        raise AudioError(
            f"the upload is {size} bytes, over the limit of {options.max_video_bytes} bytes"
        )


def _checked(info: audio.MediaInfo, options: AudioOptions) -> audio.MediaInfo:
    if not info.has_audio:
        raise AudioError("the upload has no audio stream")
    if info.duration_s > options.max_video_duration_s:
        raise AudioError(
            f"the upload lasts {info.duration_s:.0f} s, over the limit of "
            f"{options.max_video_duration_s:.0f} s"
        )
    return info


def transcribe_chunk(
    client: Any, engine: SpeechToText, work_bucket: str, chunk: AudioChunk
) -> list[TranscriptSegment]:
    """Fetch one stored chunk and transcribe it."""
    with private_workspace() as workspace:
        path = workspace / f"chunk-{chunk.index:05d}.wav"
        s3.download_file(client, work_bucket, chunk.key, path)
        return engine.transcribe_chunk(path, chunk)


def transcribe_media(
    client: Any, engine: ClovaSpeechLongForm, job: JobContext, duration_s: float
) -> Transcript:
    """Let a whole-media engine fetch the video by presigned URL, or upload it from here."""
    if engine.send_url:
        url = s3.presigned_get_url(client, job.bucket, job.key, PRESIGNED_URL_TTL_S)
        return engine.transcribe_media(
            MediaSource(
                url=url, duration_s=duration_s, size_bytes=job.size, extension=job.extension
            )
        )
    with private_workspace() as workspace:
        video = workspace / f"input.{job.extension}"
        s3.download_file(client, job.bucket, job.key, video)
        return engine.transcribe_media(
            MediaSource(path=video, duration_s=duration_s, extension=job.extension)
        )


def store_result(client: Any, bucket: str, job: JobContext, result: ResultDocument) -> ResultKeys:
    """Write the result JSON and its SRT/WebVTT subtitles; the same keys on every retry."""
    keys = ResultKeys.for_job(job)
    s3.put_json(client, bucket, keys.result, result)
    s3.put_text(client, bucket, keys.srt, subtitles.to_srt(result.transcript), SRT_CONTENT_TYPE)
    s3.put_text(client, bucket, keys.vtt, subtitles.to_webvtt(result.transcript), VTT_CONTENT_TYPE)
    return keys


def usage_ledger(manifest: AudioManifest, summary: Summary, task_retries: int) -> UsageLedger:
    """Audio and requests sent to STT, LLM tokens and retries of one job."""
    usage = summary.usage
    return UsageLedger(
        audio_seconds_to_stt=round(manifest.audio_duration_s, 3),
        stt_requests=len(manifest.chunks) or 1,
        llm_calls=usage.llm_calls,
        llm_input_tokens=usage.input_tokens,
        llm_output_tokens=usage.output_tokens,
        llm_cache_read_tokens=usage.cache_read_input_tokens,
        llm_cache_write_tokens=usage.cache_creation_input_tokens,
        task_retries=task_retries,
    )


def build_result(
    job: JobContext,
    manifest: AudioManifest,
    transcript: Transcript,
    summary: Summary,
    timings: StageTimings,
    duration_ms: int,
    task_retries: int = 0,
) -> ResultDocument:
    return ResultDocument(
        job_id=job.job_id,
        user_id=job.user_id,
        s3_bucket=job.bucket,
        s3_key=job.key,
        transcript=transcript,
        transcript_text=transcript.text,
        summary=summary,
        meta=ResultMeta(
            duration_ms=duration_ms,
            model=summary.model,
            stt_engine=transcript.engine,
            video_duration=manifest.video_duration_s,
            audio_quality=manifest.audio_filter,
            stages=timings,
            usage=usage_ledger(manifest, summary, task_retries),
        ),
    )


def done_callback(result: ResultDocument, keys: ResultKeys) -> DoneCallback:
    return DoneCallback(
        s3_bucket=result.s3_bucket,
        s3_key=result.s3_key,
        transcript=result.transcript_text,
        summary=result.summary.text,
        result_s3_key=keys.result,
        meta=CallbackMeta(
            duration_ms=result.meta.duration_ms,
            model=result.meta.model,
            stt_engine=result.meta.stt_engine,
            video_duration=result.meta.video_duration,
            audio_quality=result.meta.audio_quality,
            srt_s3_key=keys.srt,
            vtt_s3_key=keys.vtt,
        ),
    )


def failed_callback(job: JobContext, error: BaseException | None, fallback: str) -> FailedCallback:
    """The FAILED body for an error; a crash without an exception uses `fallback` as message."""
    message = error.message if isinstance(error, PipelineError) else str(error or fallback)
    return FailedCallback(
        s3_bucket=job.bucket,
        s3_key=job.key,
        error_code=error_code_of(error),
        error_message=message[:ERROR_MESSAGE_MAX_CHARS] or fallback,
    )

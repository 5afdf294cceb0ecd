"""The pipeline's stages as plain functions over S3 keys and models (no Prefect here).

Nothing local crosses a stage boundary: each stage reads its inputs from S3 or from
models, works in a private temporary directory and removes it on every path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from video_processor import chunking, ffmpeg, s3, subtitles
from video_processor.errors import AudioError, PipelineError, error_code_of
from video_processor.llm.gate import loop_segments
from video_processor.logs import get_logger, job_fields, stage
from video_processor.models import (
    LOW_CONFIDENCE_JOB_SHARE,
    AudioChunk,
    AudioManifest,
    AudioOptions,
    CallbackMeta,
    ChunkTranscript,
    DoneCallback,
    FailedCallback,
    JobContext,
    ResultDocument,
    ResultKeys,
    ResultMeta,
    StageTimings,
    Summary,
    TimeRange,
    Transcript,
    TranscriptSegment,
    UsageLedger,
)
from video_processor.stt.base import FallbackDecoding, MediaSource, SpeechToText, WholeMedia

logger = get_logger("stages")
ERROR_MESSAGE_MAX_CHARS = 1000
PRESIGNED_URL_TTL_S = 6 * 3600  # CLOVA Speech may fetch late in a long async job
PROBE_URL_TTL_S = 300
SRT_CONTENT_TYPE = "application/x-subrip; charset=utf-8"
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
# The gap check: sound further than SEGMENT_REACH_S from every segment is unheard; unheard
# pieces closer than GAP_MERGE_S join; a gap is a join holding at least GAP_MIN_SOUND_S of
# sound (a shorter one is a cough, a breath or a segment's loose timestamp).
SEGMENT_REACH_S = 1.0
GAP_MERGE_S = 2.0
GAP_MIN_SOUND_S = 5.0
AUTO_LANGUAGE = "auto"


@contextmanager
def private_workspace() -> Iterator[Path]:
    """A fresh directory only this process can read, with an unpredictable name."""
    with tempfile.TemporaryDirectory(prefix="avp-") as directory:
        yield Path(directory)


def prepare_audio(
    client: Any, job: JobContext, *, work_bucket: str, options: AudioOptions
) -> AudioManifest:
    """Download the video, extract clean mono 16 kHz audio chunks and store them in S3; for
    an engine that takes the whole upload (not ``options.chunked``), only `probe_upload`."""
    if not options.chunked:
        return probe_upload(client, job, options)
    context = job_fields(job.job_id, job.user_id)
    _check_size(client, job, options)
    with private_workspace() as workspace:
        video = workspace / "input.media"
        with stage(logger, "DOWNLOAD", context, s3_key=job.key) as done:
            done["size_bytes"] = s3.download_file(client, job.bucket, job.key, video)
        download_ms = done["duration_ms"]

        chain, label = ffmpeg.filter_chain(options.profile)
        with stage(logger, "FFMPEG", context, audio_filter=label) as done:
            info = _checked(ffmpeg.probe_media(video), options)
            chunks_dir = workspace / "chunks"
            chunks_dir.mkdir()
            extracted = chunking.extract_audio_chunks(
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
                    sound=[TimeRange(start_s=start, end_s=end) for start, end in piece.sound],
                    noisy=piece.noisy,
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
        info = _checked(ffmpeg.probe_media(url), options)
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


def _checked(info: ffmpeg.MediaInfo, options: AudioOptions) -> ffmpeg.MediaInfo:
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
) -> ChunkTranscript:
    """Fetch one stored chunk and transcribe it, checked against where it has sound."""
    with private_workspace() as workspace:
        path = workspace / f"chunk-{chunk.index:05d}.wav"
        s3.download_file(client, work_bucket, chunk.key, path)
        return transcribe_checked(engine, path, chunk)


def transcribe_checked(engine: SpeechToText, path: Path, chunk: AudioChunk) -> ChunkTranscript:
    """The chunk's segments; sound left without text gets the engine's fallback decode
    (when it has one), and what stays without text is reported as gaps, never dropped."""
    segments = engine.transcribe_chunk(path, chunk)
    gaps = find_gaps(chunk.sound, segments)
    fallback = False
    if gaps and isinstance(engine, FallbackDecoding):
        second = engine.fallback_transcribe_chunk(path, chunk)
        second_gaps = find_gaps(chunk.sound, second)
        if _seconds(second_gaps) < _seconds(gaps):
            segments, gaps, fallback = second, second_gaps, True
    if gaps:
        logger.warning(
            "chunk %d: %.1f s of sound without text (fallback decode %s)",
            chunk.index,
            _seconds(gaps),
            "used" if fallback else "no better",
        )
    return ChunkTranscript(segments=segments, gaps=gaps, fallback_decoded=fallback)


def find_gaps(sound: Sequence[TimeRange], segments: Sequence[TranscriptSegment]) -> list[TimeRange]:
    """Stretches of ``sound`` that no segment comes near (see ``GAP_MIN_SOUND_S``)."""
    reach = sorted(
        (segment.start_s - SEGMENT_REACH_S, segment.end_s + SEGMENT_REACH_S) for segment in segments
    )
    unheard: list[TimeRange] = []
    for piece in sound:
        cursor = piece.start_s
        for start, end in reach:
            if end <= cursor or start >= piece.end_s:
                continue
            if start > cursor:
                unheard.append(TimeRange(start_s=cursor, end_s=start))
            cursor = max(cursor, end)
        if cursor < piece.end_s:
            unheard.append(TimeRange(start_s=cursor, end_s=piece.end_s))
    merged: list[tuple[float, float, float]] = []  # start, end, seconds of sound
    for piece in unheard:
        if merged and piece.start_s - merged[-1][1] < GAP_MERGE_S:
            start, _end, sound_s = merged[-1]
            merged[-1] = (start, piece.end_s, sound_s + piece.duration_s)
        else:
            merged.append((piece.start_s, piece.end_s, piece.duration_s))
    return [
        TimeRange(start_s=round(start, 3), end_s=round(end, 3))
        for start, end, sound_s in merged
        if sound_s >= GAP_MIN_SOUND_S
    ]


def _seconds(ranges: Sequence[TimeRange]) -> float:
    return sum(piece.duration_s for piece in ranges)


def join_chunks(
    engine: str, language: str, chunks: Sequence[AudioChunk], parts: Sequence[ChunkTranscript]
) -> Transcript:
    """The job's transcript from its chunks' results, in order.

    With ``language="auto"`` the transcript's language is the one heard longest.
    """
    segments = [segment for part in parts for segment in part.segments]
    if language == AUTO_LANGUAGE:
        heard: dict[str, float] = {}
        for segment in segments:
            if segment.language:
                spoken = max(0.0, segment.end_s - segment.start_s)
                heard[segment.language] = heard.get(segment.language, 0.0) + spoken
        language = max(heard, key=heard.__getitem__) if heard else AUTO_LANGUAGE
    total_s = sum(chunk.duration_s for chunk in chunks)
    noisy_s = sum(chunk.duration_s for chunk in chunks if chunk.noisy)
    return Transcript(
        engine=engine,
        language=language,
        segments=segments,
        gaps=[gap for part in parts for gap in part.gaps],
        noisy_share=round(noisy_s / total_s, 3) if total_s > 0 else 0.0,
    )


def transcribe_media(
    client: Any, engine: WholeMedia, job: JobContext, duration_s: float
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
    low_share = transcript.low_confidence_share
    low_confidence = low_share >= LOW_CONFIDENCE_JOB_SHARE
    loops = loop_segments([segment for segment in transcript.segments if segment.text])
    raised = {"gaps": bool(transcript.gaps), "loops": bool(loops), "low_confidence": low_confidence}
    flags = [name for name, up in raised.items() if up]
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
            language=transcript.language,
            gaps=transcript.gaps,
            low_confidence=low_confidence,
            low_confidence_share=low_share,
            flags=flags,
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

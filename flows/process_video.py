"""The `process-video` flow: one run per uploaded video, named after its job."""

from __future__ import annotations

import time

from prefect import flow
from prefect.runtime import flow_run

from flows import tasks
from flows.artifacts import publish_run_artifacts, tag_run_with_engines
from flows.deadline import Progress, job_deadline
from flows.engines import resolve_llm_engine, resolve_stt_engine
from flows.hooks import report_failure
from flows.retry_tally import retries_of
from video_processor.config import Settings, SttEngineName, load_settings
from video_processor.llm.gate import screen_for_summary, transcript_to_store
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage, stage
from video_processor.models import (
    AudioManifest,
    AudioOptions,
    JobContext,
    StageTimings,
    Transcript,
)
from video_processor.stages import build_result, done_callback, join_chunks

logger = get_logger("flow")


def prepare(job: JobContext, engine: SttEngineName, settings: Settings) -> AudioManifest:
    """Audio chunks in S3, or only the checks and duration when the engine takes the video."""
    options = AudioOptions.from_settings(settings)
    if engine is SttEngineName.CLOVA_SPEECH:
        return tasks.with_retry_policy(tasks.probe_upload, settings)(job, options)
    return tasks.with_retry_policy(tasks.prepare_audio, settings)(job, options)


def transcribe(
    job: JobContext, manifest: AudioManifest, engine: SttEngineName, settings: Settings
) -> Transcript:
    """All chunks at once (each engine's concurrency limit paces them), stitched in order;
    a long-form engine takes the whole video instead."""
    if engine is SttEngineName.CLOVA_SPEECH:
        transcribe_media = tasks.with_retry_policy(tasks.transcribe_media, settings)
        return transcribe_media(job, manifest.video_duration_s, engine, settings.stt_language)
    transcribe_chunk = tasks.with_retry_policy(tasks.transcribe_chunk, settings)
    futures = [
        transcribe_chunk.submit(job, chunk, engine, settings.stt_language)
        for chunk in manifest.chunks
    ]
    parts = [future.result() for future in futures]
    return join_chunks(engine, settings.stt_language, manifest.chunks, parts)


@flow(
    name="process-video",
    flow_run_name="job-{job.job_id}",
    # A crash is not reported here: the crash automation reschedules the run, and
    # `recover-crashed-run` sends FAILED only when the reschedules are used up.
    on_failure=[report_failure],
)
def process_video(job: JobContext) -> str:
    """Video → audio → transcript → summary → result JSON in S3 → DONE callback."""
    settings = load_settings()
    configure_json_logging(settings.log_level)
    with job_deadline(settings.job_timeout_seconds) as progress:
        return _process(job, settings, progress)


def _process(job: JobContext, settings: Settings, progress: Progress) -> str:
    context = job_fields(job.job_id, job.user_id)
    started = time.monotonic()
    stt_engine = resolve_stt_engine(settings)
    llm_engine = resolve_llm_engine(settings)
    tag_run_with_engines(stt_engine, llm_engine)
    log_stage(
        logger, "JOB_START", context, s3_key=job.key, stt_engine=stt_engine, llm_engine=llm_engine
    )

    manifest = prepare(job, stt_engine, settings)
    progress.stage = "stt"
    with stage(logger, "STT", context, engine=stt_engine, chunks=len(manifest.chunks)) as stt:
        transcript = transcribe(job, manifest, stt_engine, settings)
        stt.update(segments=len(transcript.segments), transcript_length=len(transcript.text))
    # Quality gate (raises TranscriptRejected: STT_BAD_RESPONSE) and PII masking, then the LLM.
    screened = screen_for_summary(transcript, manifest.audio_duration_s, settings)
    log_stage(logger, "TRANSCRIPT_CHECKED", context, **screened.report.model_dump())
    progress.stage = "llm"
    with stage(logger, "LLM", context, engine=llm_engine) as llm:
        summary = tasks.with_retry_policy(tasks.summarize, settings)(
            job, screened.transcript, llm_engine
        )
        llm.update(
            strategy=summary.strategy,
            chunks=summary.chunks,
            key_points=len(summary.key_points),
            **summary.usage.model_dump(),
        )
        llm.update(model=summary.model, summary_length=len(summary.text))

    progress.stage = "result"
    timings = StageTimings(
        download_ms=manifest.download_ms,
        ffmpeg_ms=manifest.ffmpeg_ms,
        stt_ms=stt["duration_ms"],
        llm_ms=llm["duration_ms"],
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    stored = transcript_to_store(transcript, settings)
    retries = retries_of(str(flow_run.id))
    result = build_result(job, manifest, stored, summary, timings, duration_ms, retries)
    keys = tasks.with_retry_policy(tasks.store_result, settings)(job, result)
    tasks.with_retry_policy(tasks.send_callback, settings)(job, done_callback(result, keys))
    publish_run_artifacts(result, keys, settings.result_bucket_name)
    tasks.clean_up_work_files(job, return_state=True)  # best effort: the job is done
    log_stage(
        logger,
        "JOB_DONE",
        context,
        duration_ms=int((time.monotonic() - started) * 1000),
        result_s3_key=keys.result,
    )
    return keys.result

"""The `process-video` flow: one run per uploaded video, named after its job."""

from __future__ import annotations

import time

from prefect import flow

from flows import tasks
from flows.engines import resolve_llm_engine, resolve_stt_engine
from flows.hooks import report_failure
from video_processor.config import load_settings
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage, stage
from video_processor.models import AudioOptions, JobContext, StageTimings, Transcript
from video_processor.stages import build_result, done_callback

logger = get_logger("flow")


@flow(
    name="process-video",
    flow_run_name="job-{job.job_id}",
    on_failure=[report_failure],
    on_crashed=[report_failure],
)
def process_video(job: JobContext) -> str:
    """Video → audio → transcript → summary → result JSON in S3 → DONE callback."""
    settings = load_settings()
    configure_json_logging(settings.log_level)
    context = job_fields(job.job_id, job.user_id)
    started = time.monotonic()
    stt_engine = resolve_stt_engine(settings)
    llm_engine = resolve_llm_engine(settings)
    log_stage(
        logger, "JOB_START", context, s3_key=job.key, stt_engine=stt_engine, llm_engine=llm_engine
    )

    manifest = tasks.with_retry_policy(tasks.prepare_audio, settings)(
        job, AudioOptions.from_settings(settings)
    )
    transcribe_chunk = tasks.with_retry_policy(tasks.transcribe_chunk, settings)
    with stage(logger, "STT", context, engine=stt_engine, chunks=len(manifest.chunks)) as stt:
        segments = [
            segment
            for chunk in manifest.chunks
            for segment in transcribe_chunk(job, chunk, stt_engine, settings.stt_language)
        ]
        transcript = Transcript(
            engine=stt_engine, language=settings.stt_language, segments=segments
        )
        stt["transcript_length"] = len(transcript.text)
    with stage(logger, "LLM", context, engine=llm_engine) as llm:
        summary = tasks.with_retry_policy(tasks.summarize, settings)(job, transcript, llm_engine)
        llm.update(model=summary.model, summary_length=len(summary.text))

    timings = StageTimings(
        download_ms=manifest.download_ms,
        ffmpeg_ms=manifest.ffmpeg_ms,
        stt_ms=stt["duration_ms"],
        llm_ms=llm["duration_ms"],
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    result = build_result(job, manifest, transcript, summary, timings, duration_ms)
    result_key = tasks.with_retry_policy(tasks.store_result, settings)(job, result)
    tasks.with_retry_policy(tasks.send_callback, settings)(job, done_callback(result, result_key))
    tasks.clean_up_work_files(job, return_state=True)  # best effort: the job is done
    log_stage(
        logger,
        "JOB_DONE",
        context,
        duration_ms=int((time.monotonic() - started) * 1000),
        result_s3_key=result_key,
    )
    return result_key

"""The `process-video` flow: one run per uploaded video, named after its job.

Four task runs at most: prepare-audio → transcribe → summarize → finish. The run's
engines and options are decided once (`RunPlan`) and passed to each task.
"""

from __future__ import annotations

import time

from prefect import flow
from prefect.runtime import flow_run

from flows import runtime, tasks
from flows.artifacts import publish_run_artifacts, tag_run_with_engines
from flows.deadline import Progress, job_deadline
from flows.hooks import report_cancellation, report_failure
from flows.retry_tally import retries_of
from video_processor.llm.gate import screen_for_summary, transcript_to_store
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage, stage
from video_processor.models import JobContext, StageTimings
from video_processor.stages import build_result

logger = get_logger("flow")


@flow(
    name="process-video",
    flow_run_name="job-{job.job_id}",
    # A crash is not reported here: the crash automation reschedules the run, and
    # `recover-crashed-run` sends FAILED only when the reschedules are used up.
    on_failure=[report_failure],
    on_cancellation=[report_cancellation],
)
def process_video(job: JobContext) -> str:
    """Video → audio → transcript → summary → result JSON in S3 → DONE callback."""
    settings = runtime.settings()
    configure_json_logging(settings.log_level)
    with job_deadline(settings.job_timeout_seconds) as progress:
        return _process(job, progress)


def _process(job: JobContext, progress: Progress) -> str:
    settings = runtime.settings()
    context = job_fields(job.job_id, job.user_id)
    started = time.monotonic()
    plan = runtime.plan_run()
    tag_run_with_engines(plan.stt_engine, plan.llm_engine)
    log_stage(
        logger,
        "JOB_START",
        context,
        s3_key=job.key,
        stt_engine=plan.stt_engine,
        llm_engine=plan.llm_engine,
    )

    manifest = tasks.prepare_audio(job, plan)
    progress.stage = "stt"
    with stage(logger, "STT", context, engine=plan.stt_engine, chunks=len(manifest.chunks)) as stt:
        transcript = tasks.transcribe(job, manifest, plan)
        stt.update(segments=len(transcript.segments), transcript_length=len(transcript.text))
    # Quality gate (raises TranscriptRejected: STT_BAD_RESPONSE) and PII masking, then the LLM.
    screened = screen_for_summary(transcript, manifest.audio_duration_s, settings)
    log_stage(logger, "TRANSCRIPT_CHECKED", context, **screened.report.model_dump())
    progress.stage = "llm"
    with stage(logger, "LLM", context, engine=plan.llm_engine) as llm:
        summary = tasks.summarize(job, screened.transcript, plan)
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
    keys = tasks.finish(job, result)
    publish_run_artifacts(result, keys, settings.result_bucket_name)
    log_stage(
        logger,
        "JOB_DONE",
        context,
        duration_ms=int((time.monotonic() - started) * 1000),
        result_s3_key=keys.result,
    )
    return keys.result

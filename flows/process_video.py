"""The `process-video` flow: one run per uploaded video, named after its job.

Four task runs at most: prepare-audio → transcribe → summarize → finish. The run's
engines and options are decided once (`RunPlan`) and passed to each task.

How a run ends otherwise is here too: past JOB_TIMEOUT_SECONDS it fails with the code of
the stage it was in (`job_deadline`); a failed or cancelled run sends the FAILED callback
from its state hooks. A crash is not reported here: the crash automation reschedules the
run, and `recover-crashed-run` sends FAILED only when the reschedules are used up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.runtime import flow_run as current_flow_run
from prefect.utilities.timeout import timeout

from flows import runtime, tasks
from flows.artifacts import publish_run_artifacts, tag_run_with_engines
from flows.retry_tally import retries_of
from video_processor.errors import (
    AudioError,
    CallbackError,
    PipelineError,
    SpeechToTextTimeout,
    SummaryTimeout,
)
from video_processor.llm.gate import screen_for_summary, transcript_to_store
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage, stage
from video_processor.models import JobContext, StageTimings
from video_processor.stages import build_result, failed_callback

logger = get_logger("flow")

STAGE_ERRORS: dict[str, type[PipelineError]] = {
    "audio": AudioError,
    "stt": SpeechToTextTimeout,
    "llm": SummaryTimeout,
}


class _DeadlinePassed(TimeoutError):
    """Raised into the flow by Prefect's timeout; turned into the stage's pipeline error."""


@dataclass
class Progress:
    """The stage a job is in: `audio`, `stt`, `llm`, then `result`."""

    stage: str = "audio"


def deadline_error(stage: str, seconds: float) -> PipelineError:
    """FFMPEG_FAILED, STT_TIMEOUT or LLM_TIMEOUT by stage; UNKNOWN_ERROR after them."""
    error_type = STAGE_ERRORS.get(stage, PipelineError)
    return error_type(f"the job took longer than JOB_TIMEOUT_SECONDS={seconds:.0f} (in {stage})")


@contextmanager
def job_deadline(seconds: float) -> Iterator[Progress]:
    """Stop the job body after `seconds`; the caller records its stage in the Progress."""
    progress = Progress()
    started = time.monotonic()
    try:
        with timeout(seconds, timeout_exc_type=_DeadlinePassed):
            yield progress
    except _DeadlinePassed as exc:
        cancelled = exc.__context__
        if time.monotonic() - started < seconds and cancelled is not None:
            # Prefect cancelled the run for its own reason (e.g. its concurrency lease was
            # lost when the run was marked Crashed): not a deadline, so not a FAILED job.
            raise cancelled from None
        raise deadline_error(progress.stage, seconds) from exc


def _exception_of(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:  # the run's own failure, re-raised by Prefect
        return exc
    return None


def report_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Send the FAILED callback with the error code of what ended the run."""
    job = JobContext.model_validate(flow_run.parameters["job"])
    error = _exception_of(state)
    body = failed_callback(job, error, fallback=state.message or f"flow run {state.name}")
    log_stage(
        logger,
        "JOB_FAILED",
        job_fields(job.job_id, job.user_id),
        error_code=body.error_code,
        error=body.error_message,
        state=state.name,
        flow_run_id=str(flow_run.id),
    )
    if isinstance(error, CallbackError):
        return  # the backend is what failed; the result is stored, and a retry re-sends DONE
    tasks.send_callback(job, body)


def report_cancellation(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """A run cancelled from the UI or API: the backend hears FAILED, so no job waits on
    an answer that will never come (a later retry of the run can still send DONE)."""
    job = JobContext.model_validate(flow_run.parameters["job"])
    log_stage(
        logger,
        "JOB_CANCELLED",
        job_fields(job.job_id, job.user_id),
        state=state.name,
        flow_run_id=str(flow_run.id),
    )
    reason = f"the job was cancelled: {state.message or 'by an operator'}"
    tasks.send_callback(job, failed_callback(job, None, fallback=reason))


@flow(
    name="process-video",
    flow_run_name="job-{job.job_id}",
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
    retries = retries_of(str(current_flow_run.id))
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

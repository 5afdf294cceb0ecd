"""Flow-run state hooks: operations code that stays out of the pipeline's stages."""

from __future__ import annotations

from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State

from flows.tasks import send_callback
from video_processor.errors import CallbackError
from video_processor.logs import get_logger, job_fields, log_stage
from video_processor.models import JobContext
from video_processor.stages import failed_callback

logger = get_logger("hooks")


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
    send_callback(job, body)


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
    send_callback(job, failed_callback(job, None, fallback=reason))

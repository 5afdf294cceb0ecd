"""Prefect tasks: one per stage, each a thin wrapper over `video_processor.stages`.

Retries are declared here and tuned per environment with `with_retry_policy`; only
errors marked retryable (timeouts, 429, 5xx, connection errors) are retried. Tasks that
cost money (STT, LLM) or time (audio) cache their results in the result storage by
their inputs, so a retried flow run resumes at the stage that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import httpx
from prefect import Task, task
from prefect.cache_policies import INPUTS, NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect_aws import AwsCredentials

from blocks import BackendCallback, load_block
from flows.engines import (
    build_media_engine,
    build_stt_engine,
    build_summarizer,
    request_throttle,
)
from flows.retry_tally import count_retries
from video_processor import outbox, s3, stages
from video_processor.config import (
    LlmEngineName,
    Settings,
    SttEngineName,
    concurrency_limit_name,
    load_settings,
)
from video_processor.errors import CallbackError, is_retryable
from video_processor.logs import get_logger, job_fields, log_stage
from video_processor.models import (
    AudioChunk,
    AudioManifest,
    AudioOptions,
    ChunkTranscript,
    DoneCallback,
    FailedCallback,
    JobContext,
    ResultDocument,
    ResultKeys,
    Summary,
    Transcript,
)

logger = get_logger("tasks")
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAYS_S = [1.0, 2.0, 4.0]
RETRY_JITTER_FACTOR = 0.2
T = TypeVar("T", bound=Task[Any, Any])
P = ParamSpec("P")
R = TypeVar("R")


def _orchestration_hiccup(exc: BaseException) -> bool:
    """The Prefect API itself was briefly unavailable (a busy server, a lost connection)."""
    if isinstance(exc, ConcurrencySlotAcquisitionError | httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry timeouts, throttling, 5xx and connection errors; never 4xx or bad input."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc) or _orchestration_hiccup(exc)
    return False


def with_retry_policy(stage_task: T, settings: Settings) -> T:
    """The task with MAX_RETRIES attempts and exponential delays from RETRY_DELAY_SECONDS."""
    delays = [settings.retry_delay_seconds * 2**attempt for attempt in range(settings.max_retries)]
    return stage_task.with_options(  # type: ignore[return-value]
        retries=settings.max_retries, retry_delay_seconds=delays or 0
    )


def stage_task(
    name: str, *, cached: bool, task_run_name: str | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A stage's task: transient errors retried; `cached` stages keep their results in the
    result storage by their inputs, so a retried run does not pay for them again."""
    return task(
        name=name,
        task_run_name=task_run_name,
        retries=DEFAULT_RETRIES,
        retry_delay_seconds=DEFAULT_RETRY_DELAYS_S,
        retry_jitter_factor=RETRY_JITTER_FACTOR,
        retry_condition_fn=retry_if_transient,
        cache_policy=INPUTS if cached else NO_CACHE,
        persist_result=cached,
        on_completion=[count_retries],
    )


def s3_client(settings: Settings) -> Any:
    return load_block(AwsCredentials, settings.blocks.aws_credentials).get_s3_client()


@stage_task("prepare-audio", cached=True)
def prepare_audio(job: JobContext, options: AudioOptions) -> AudioManifest:
    """Download the video and store its cleaned audio in S3 as STT-sized chunks."""
    settings = load_settings()
    return stages.prepare_audio(
        s3_client(settings), job, work_bucket=settings.result_bucket_name, options=options
    )


@stage_task("probe-upload", cached=False)
def probe_upload(job: JobContext, options: AudioOptions) -> AudioManifest:
    """Check the caps and read the duration for an engine that fetches the video itself."""
    settings = load_settings()
    return stages.probe_upload(s3_client(settings), job, options)


@stage_task("transcribe-chunk", task_run_name="transcribe-chunk-{chunk.index}", cached=True)
def transcribe_chunk(
    job: JobContext, chunk: AudioChunk, engine: SttEngineName, language: str
) -> ChunkTranscript:
    """Transcribe one stored audio chunk (cached: a retry never pays for it twice).

    Chunks run concurrently; the engine's global concurrency limit bounds them.
    """
    settings = load_settings()
    stt = build_stt_engine(engine, settings)
    client = s3_client(settings)
    throttle = request_throttle("stt", engine, settings)
    with concurrency(concurrency_limit_name("stt", engine), occupy=1, strict=True):
        if throttle is not None:
            throttle()
        return stages.transcribe_chunk(client, stt, settings.result_bucket_name, chunk)


@stage_task("transcribe-media", cached=True)
def transcribe_media(
    job: JobContext, duration_s: float, engine: SttEngineName, language: str
) -> Transcript:
    """Transcribe the whole video with a long-form engine (CLOVA Speech), cached."""
    settings = load_settings()
    long_form = build_media_engine(settings)
    with concurrency(concurrency_limit_name("stt", engine), occupy=1, strict=True):
        return stages.transcribe_media(s3_client(settings), long_form, job, duration_s)


@stage_task("summarize", cached=True)
def summarize(job: JobContext, transcript: Transcript, engine: LlmEngineName) -> Summary:
    """Summarise the transcript (cached: a retry never pays for it twice)."""
    summarizer = build_summarizer(engine, load_settings())
    with concurrency(concurrency_limit_name("llm", engine), occupy=1, strict=True):
        return summarizer.summarize(transcript)


@stage_task("store-result", cached=False)
def store_result(job: JobContext, result: ResultDocument) -> ResultKeys:
    """Write the result JSON and subtitles to their fixed keys in the result bucket."""
    settings = load_settings()
    return stages.store_result(s3_client(settings), settings.result_bucket_name, job, result)


@stage_task("send-callback", cached=False)
def send_callback(job: JobContext, body: DoneCallback | FailedCallback) -> int | None:
    """Record the job's final state in the outbox, then deliver it to the backend.

    Returns the backend's HTTP status, or None when a DONE was already delivered.
    """
    settings = load_settings()
    client = s3_client(settings)
    delivery = outbox.record(client, settings.result_bucket_name, job, body)
    context = {
        **job_fields(job.job_id, job.user_id),
        "status": delivery.body.status,
        "delivery_id": delivery.delivery_id,
    }
    if delivery.delivered_at is not None:
        log_stage(logger, "CALLBACK_SUCCESS", context, already_delivered=True)
        return None
    backend = load_block(BackendCallback, settings.blocks.backend).get_client()
    try:
        status = outbox.deliver(client, settings.result_bucket_name, backend, delivery)
    except CallbackError as exc:
        log_stage(logger, "CALLBACK_FAILED", context, error=exc.message, retryable=exc.retryable)
        raise
    finally:
        backend.close()
    log_stage(logger, "CALLBACK_SUCCESS", context, http_status=status)
    return status


@task(name="clean-up-work-files", cache_policy=NO_CACHE)
def clean_up_work_files(job: JobContext) -> int:
    """Remove the job's intermediate audio from S3 once the result is stored."""
    settings = load_settings()
    return s3.delete_prefix(s3_client(settings), settings.result_bucket_name, job.work_prefix)

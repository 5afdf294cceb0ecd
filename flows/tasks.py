"""Prefect tasks: a run has at most four (prepare, transcribe, summarize, finish).

Each is a thin wrapper over `video_processor.stages`. Retries are declared on the
decorator, once (`stage_task`), from MAX_RETRIES and RETRY_DELAY_SECONDS; only errors
marked retryable (timeouts, 429, 5xx, connection errors) are retried. Tasks that cost
money (STT, LLM) or time (audio) cache their results in the result storage by their
inputs, so a retried flow run resumes at the stage that failed; inside `transcribe`,
each chunk's transcript is also kept in the result storage as soon as it is made, so a
retry of a failed chunk does not send the chunks that succeeded again.

Settings, blocks, S3 clients and engines come from `flows.runtime`: built once per
process and reused by every run a warm worker executes.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import httpx
from prefect import Task, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import INPUTS, NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.results import ResultStore, get_result_store

from flows import cancellation, runtime
from flows.retry_tally import count_retries
from flows.slots import engine_slot
from video_processor import outbox, s3, stages
from video_processor.config import concurrency_limit_name
from video_processor.errors import CallbackError, is_retryable
from video_processor.http_errors import retryable_status
from video_processor.logs import get_logger, job_fields, log_stage
from video_processor.models import (
    AudioChunk,
    AudioManifest,
    ChunkTranscript,
    DoneCallback,
    FailedCallback,
    JobContext,
    ResultDocument,
    ResultKeys,
    RunPlan,
    Summary,
    Transcript,
)
from video_processor.stt.base import SpeechToText, WholeMedia

logger = get_logger("tasks")
RETRY_JITTER_FACTOR = 0.2
PROGRESS_MIN_CHUNKS = 4  # shorter videos finish before a progress bar would help
PROGRESS_UPDATE_S = 3.0
P = ParamSpec("P")
R = TypeVar("R")


def _orchestration_hiccup(exc: BaseException) -> bool:
    """The Prefect API itself was briefly unavailable (a busy server, a lost connection)."""
    if isinstance(exc, ConcurrencySlotAcquisitionError | httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and retryable_status(exc.response.status_code)


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry timeouts, throttling, 5xx and connection errors; never 4xx or bad input."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc) or _orchestration_hiccup(exc)
    return False


def retry_delays(max_retries: int, first_delay_s: float) -> list[float]:
    """Exponential delays: RETRY_DELAY_SECONDS, then twice as long each time."""
    return [first_delay_s * 2**attempt for attempt in range(max_retries)]


def stage_task(name: str, *, cached: bool) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A stage's task: transient errors retried (MAX_RETRIES, read once per process);
    `cached` stages keep their results in the result storage by their inputs, so a
    retried run does not pay for them again."""
    settings = runtime.settings()
    declare = task(
        name=name,
        retries=settings.max_retries,
        retry_delay_seconds=retry_delays(settings.max_retries, settings.retry_delay_seconds),
        retry_jitter_factor=RETRY_JITTER_FACTOR,
        retry_condition_fn=retry_if_transient,
        cache_policy=INPUTS if cached else NO_CACHE,
        persist_result=cached,
        on_completion=[count_retries],
    )

    def decorate(stage: Callable[P, R]) -> Task[P, R]:
        @functools.wraps(stage)
        def unless_cancelled(*args: P.args, **kwargs: P.kwargs) -> R:
            # Task states are orchestrated client-side: nothing stops a task of a run that
            # is Cancelling but this check (a process-per-run worker kills the process).
            cancellation.raise_if_requested()
            return stage(*args, **kwargs)

        return declare(unless_cancelled)

    return decorate


@stage_task("prepare-audio", cached=True)
def prepare_audio(job: JobContext, plan: RunPlan) -> AudioManifest:
    """Download the video and store its cleaned audio in S3 as STT-sized chunks; for an
    engine that takes the whole upload (the plan says), only check the caps and read the
    duration."""
    bucket = runtime.settings().result_bucket_name
    return stages.prepare_audio(runtime.s3_client(), job, work_bucket=bucket, options=plan.audio)


@stage_task("transcribe", cached=True)
def transcribe(job: JobContext, manifest: AudioManifest, plan: RunPlan) -> Transcript:
    """The whole transcript: every chunk at once (the engine's global concurrency limit
    paces them across runs), stitched in order; a whole-media engine takes the video."""
    engine = runtime.stt_engine(plan)
    if isinstance(engine, WholeMedia):
        with engine_slot(concurrency_limit_name("stt", plan.stt_engine)):
            return stages.transcribe_media(
                runtime.s3_client(), engine, job, manifest.video_duration_s
            )
    store = get_result_store()
    progress = ChunkProgress(len(manifest.chunks))
    with ThreadPoolExecutor(max_workers=plan.chunk_concurrency) as pool:
        # Each chunk in a copy of this task's context: its logs and limits belong to the run.
        futures = [
            pool.submit(
                contextvars.copy_context().run, _transcribe_stored, chunk, engine, plan, store
            )
            for chunk in manifest.chunks
        ]
        parts = []
        for future in futures:
            parts.append(future.result())
            progress.advance()
    progress.close()
    return stages.join_chunks(plan.stt_engine, plan.stt_language, manifest.chunks, parts)


def _transcribe_stored(
    chunk: AudioChunk, engine: SpeechToText, plan: RunPlan, store: ResultStore
) -> ChunkTranscript:
    """One chunk, from the result store when an earlier attempt already transcribed it."""
    key = chunk_result_key(chunk, plan)
    stored = _read_stored_chunk(store, key)
    if stored is not None:
        return stored
    cancellation.raise_if_requested()
    with engine_slot(concurrency_limit_name("stt", plan.stt_engine)):
        throttle = runtime.request_throttle("stt", plan.stt_engine)
        if throttle is not None:
            throttle()
        part = stages.transcribe_chunk(
            runtime.s3_client(),
            engine,
            runtime.settings().result_bucket_name,
            chunk,
        )
    store.write(part, key=key)
    return part


def _read_stored_chunk(store: ResultStore, key: str) -> ChunkTranscript | None:
    """The chunk's transcript if an earlier attempt stored it: one read, any failure a miss
    (as `ResultStore.exists` treats it), so at worst the chunk is transcribed again."""
    try:
        record = store.read(key)
    except Exception:
        return None
    return ChunkTranscript.model_validate(record.result)


def chunk_result_key(chunk: AudioChunk, plan: RunPlan) -> str:
    """Where a chunk's transcript is kept: by the chunk (its S3 key names the job) and
    what transcribes it, so another engine or language never reads it back."""
    identity = f"{chunk.model_dump_json()}|{plan.stt_engine}|{plan.stt_language}"
    return f"transcribe-chunk-{hashlib.sha256(identity.encode()).hexdigest()}"


class ChunkProgress:
    """A progress artifact for a long video (chunks transcribed of total), updated at
    most every PROGRESS_UPDATE_S seconds."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._updated_at = 0.0
        self._artifact_id: UUID | None = None
        if total >= PROGRESS_MIN_CHUNKS:
            self._artifact_id = create_progress_artifact(  # type: ignore[assignment]
                progress=0.0, description=f"0 of {total} chunks transcribed"
            )
            self._updated_at = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        if time.monotonic() - self._updated_at >= PROGRESS_UPDATE_S:
            self._update()

    def close(self) -> None:
        if self._updated_at and self.done:
            self._update()

    def _update(self) -> None:
        if self._artifact_id is None:
            return
        self._updated_at = time.monotonic()
        update_progress_artifact(
            self._artifact_id,
            progress=100.0 * self.done / self.total,
            description=f"{self.done} of {self.total} chunks transcribed",
        )


@stage_task("summarize", cached=True)
def summarize(job: JobContext, transcript: Transcript, plan: RunPlan) -> Summary:
    """Summarise the transcript (cached: a retry never pays for it twice)."""
    summarizer = runtime.summarizer(plan)
    with engine_slot(concurrency_limit_name("llm", plan.llm_engine)):
        return summarizer.summarize(transcript)


@stage_task("finish", cached=False)
def finish(job: JobContext, result: ResultDocument) -> ResultKeys:
    """Store the result and its subtitles at their fixed keys, deliver the DONE callback,
    then remove the job's intermediate audio (best effort: the job is done)."""
    client = runtime.s3_client()
    bucket = runtime.settings().result_bucket_name
    keys = stages.store_result(client, bucket, job, result)
    deliver_callback(job, stages.done_callback(result, keys))
    try:
        s3.delete_prefix(client, bucket, job.work_prefix)
    except Exception:  # the lifecycle rule on work/ removes what is left
        logger.warning("could not remove intermediate audio", exc_info=True)
    return keys


@stage_task("send-callback", cached=False)
def send_callback(job: JobContext, body: DoneCallback | FailedCallback) -> int | None:
    """Record the job's final state in the outbox, then deliver it to the backend."""
    return deliver_callback(job, body)


def deliver_callback(job: JobContext, body: DoneCallback | FailedCallback) -> int | None:
    """Returns the backend's HTTP status, or None when a DONE was already delivered."""
    client = runtime.s3_client()
    bucket = runtime.settings().result_bucket_name
    delivery = outbox.record(client, bucket, job, body)
    context = {
        **job_fields(job.job_id, job.user_id),
        "status": delivery.body.status,
        "delivery_id": delivery.delivery_id,
    }
    if delivery.delivered_at is not None:
        log_stage(logger, "CALLBACK_SUCCESS", context, already_delivered=True)
        return None
    try:
        status = outbox.deliver(client, bucket, runtime.backend_client(), delivery)
    except CallbackError as exc:
        log_stage(logger, "CALLBACK_FAILED", context, error=exc.message, retryable=exc.retryable)
        raise
    log_stage(logger, "CALLBACK_SUCCESS", context, http_status=status)
    return status

"""What a flow-run process builds once and every run in it reuses.

A warm worker executes many runs in one process: settings are parsed once, blocks are
cached by `blocks.load_block`, and the S3 client, the STT engine, the summariser and the
backend client are built by one factory (`_reused`) from their block: built again only when
the block changed (a re-bootstrap takes effect within BLOCK_CACHE_S), and the client it
replaces closed. The local engines, which have no block, are built once per process. Each
is safe to share between threads (boto3 and httpx clients, the Whisper model).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from prefect_aws import AwsCredentials

from blocks import BackendCallback, load_block
from flows import engines
from video_processor.callback import BackendClient
from video_processor.config import Settings, load_settings
from video_processor.llm.base import Summarizer
from video_processor.models import AudioOptions, RunPlan
from video_processor.stt.base import SttEngine

T = TypeVar("T")
_lock = threading.Lock()
_built: dict[tuple[Any, ...], tuple[object, Any]] = {}


@functools.cache
def settings() -> Settings:
    """The configuration, validated once per process."""
    return load_settings()


def _reused(key: tuple[Any, ...], source: object, build: Callable[[], T]) -> T:
    """The value built for ``key`` from ``source`` (its block); built again only when the
    source changed, and the value it replaces closed."""
    with _lock:
        cached = _built.get(key)
    if cached is not None and cached[0] == source:
        return cached[1]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        current = _built.get(key)
        if current is not None and current[0] == source:
            _close(value)  # another thread built it first: keep theirs
            return current[1]  # type: ignore[no-any-return]
        _built[key] = (source, value)
    if current is not None:
        _close(current[1])
    return value


def _close(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()


def s3_client() -> Any:
    credentials = load_block(AwsCredentials, settings().blocks.aws_credentials)
    return _reused(("s3",), credentials, credentials.get_s3_client)


def backend_client() -> BackendClient:
    backend = load_block(BackendCallback, settings().blocks.backend)
    return _reused(("backend",), backend, backend.get_client)


def stt_engine(plan: RunPlan) -> SttEngine:
    """The run's STT engine, whichever it is (`engines.STT_ENGINES`)."""
    config = settings()
    return _reused(
        ("stt", plan.stt_engine, plan.stt_language),
        engines.stt_block(plan.stt_engine, config),
        lambda: engines.build_stt_engine(plan.stt_engine, plan.stt_language, config),
    )


def summarizer(plan: RunPlan) -> Summarizer:
    config = settings()
    return _reused(
        ("llm", plan.llm_engine),
        engines.llm_block(plan.llm_engine, config),
        lambda: engines.build_summarizer(plan.llm_engine, config),
    )


@functools.cache
def request_throttle(kind: str, engine: str) -> Callable[[], None] | None:
    return engines.request_throttle(kind, engine, settings())


def plan_run() -> RunPlan:
    """The engines and options of one run, resolved at its start."""
    config = settings()
    stt = engines.resolve_stt_engine(config)
    return RunPlan(
        stt_engine=stt,
        stt_language=config.stt_language,
        llm_engine=engines.resolve_llm_engine(config),
        audio=AudioOptions.from_settings(config, chunked=not engines.STT_ENGINES[stt].whole_media),
        chunk_concurrency=config.stt_chunk_concurrency,
    )

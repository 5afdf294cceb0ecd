"""What a flow-run process builds once and every run in it reuses.

A warm worker executes many runs in one process: settings are parsed once, blocks are
cached by `blocks.load_block`, and the S3 client, the engines and the backend client
are built once per BLOCK_CACHE_S (so a re-bootstrapped block takes effect within that
time); the local Whisper model, which has no block, once per process. Each is safe to
share between threads (boto3 and httpx clients, the Whisper model).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect_aws import AwsCredentials

from blocks import BLOCK_CACHE_S, BackendCallback, load_block
from flows import engines
from video_processor.callback import BackendClient
from video_processor.config import Settings, SttEngineName, load_settings
from video_processor.llm.base import Summarizer
from video_processor.models import AudioOptions, RunPlan
from video_processor.stt.base import SpeechToText
from video_processor.stt.clova_speech import ClovaSpeechLongForm

T = TypeVar("T")
_lock = threading.Lock()
_built: dict[tuple[Any, ...], tuple[float, Any]] = {}


@functools.cache
def settings() -> Settings:
    """The configuration, validated once per process."""
    return load_settings()


def _reused(key: tuple[Any, ...], build: Callable[[], T], max_age_s: float | None) -> T:
    with _lock:
        cached = _built.get(key)
        if cached is not None and (max_age_s is None or time.monotonic() - cached[0] < max_age_s):
            return cached[1]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        _built[key] = (time.monotonic(), value)
    return value


def s3_client() -> Any:
    name = settings().blocks.aws_credentials
    return _reused(("s3",), lambda: load_block(AwsCredentials, name).get_s3_client(), BLOCK_CACHE_S)


def backend_client() -> BackendClient:
    name = settings().blocks.backend
    return _reused(
        ("backend",), lambda: load_block(BackendCallback, name).get_client(), BLOCK_CACHE_S
    )


def stt_engine(plan: RunPlan) -> SpeechToText:
    max_age_s = None if plan.stt_engine is SttEngineName.LOCAL else BLOCK_CACHE_S
    return _reused(
        ("stt", plan.stt_engine, plan.stt_language),
        lambda: engines.build_stt_engine(plan.stt_engine, plan.stt_language, settings()),
        max_age_s,
    )


def media_engine(plan: RunPlan) -> ClovaSpeechLongForm:
    return _reused(
        ("media", plan.stt_language),
        lambda: engines.build_media_engine(plan.stt_language, settings()),
        BLOCK_CACHE_S,
    )


def summarizer(plan: RunPlan) -> Summarizer:
    return _reused(
        ("llm", plan.llm_engine),
        lambda: engines.build_summarizer(plan.llm_engine, settings()),
        BLOCK_CACHE_S,
    )


def request_throttle(kind: str, engine: str) -> Callable[[], None] | None:
    return engines.request_throttle(kind, engine, settings())


def plan_run() -> RunPlan:
    """The engines and options of one run, resolved at its start."""
    config = settings()
    return RunPlan(
        stt_engine=engines.resolve_stt_engine(config),
        stt_language=config.stt_language,
        llm_engine=engines.resolve_llm_engine(config),
        audio=AudioOptions.from_settings(config),
        chunk_concurrency=config.stt_chunk_concurrency,
    )

"""Choosing the STT and summary engines: configuration names them, blocks hold their keys."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from prefect.blocks.core import Block
from prefect.concurrency.sync import rate_limit

from blocks import ClaudeCredentials, ClovaCsrCredentials, ClovaSpeechCredentials, load_block
from video_processor.config import (
    LlmEngineName,
    Settings,
    SttEngineName,
    rate_limit_name,
    rate_limits,
)
from video_processor.errors import ConfigurationError
from video_processor.llm.base import Summarizer, SummaryPolicy
from video_processor.llm.local_extractive import LocalExtractiveSummarizer
from video_processor.stt.base import SpeechToText
from video_processor.stt.clova_speech import ClovaSpeechLongForm

B = TypeVar("B", bound=Block)


def _load_optional(block_type: type[B], name: str) -> B | None:
    try:
        return load_block(block_type, name)
    except ValueError:
        return None


def _require(block_type: type[B], name: str, variable: str) -> B:
    block = _load_optional(block_type, name)
    if block is None:
        raise ConfigurationError(
            f"{variable} selects an engine whose block {name!r} does not exist; "
            "run `python -m operations.bootstrap` with its credentials set"
        )
    return block


def resolve_stt_engine(settings: Settings) -> SttEngineName:
    """`auto`: CLOVA CSR, else CLOVA Speech, whichever block exists; else the local engine."""
    if settings.stt_engine is not SttEngineName.AUTO:
        return settings.stt_engine
    if _load_optional(ClovaCsrCredentials, settings.blocks.clova):
        return SttEngineName.CLOVA_CSR
    if _load_optional(ClovaSpeechCredentials, settings.blocks.clova_speech):
        return SttEngineName.CLOVA_SPEECH
    return SttEngineName.LOCAL


def resolve_llm_engine(settings: Settings) -> LlmEngineName:
    """`auto` means Claude when its block exists, the local summariser otherwise."""
    if settings.llm_engine is not LlmEngineName.AUTO:
        return settings.llm_engine
    claude = _load_optional(ClaudeCredentials, settings.blocks.claude)
    return LlmEngineName.CLAUDE if claude else LlmEngineName.LOCAL


def build_stt_engine(name: SttEngineName, language: str, settings: Settings) -> SpeechToText:
    if name is SttEngineName.CLOVA_CSR:
        clova = _require(ClovaCsrCredentials, settings.blocks.clova, "STT_ENGINE")
        return clova.get_engine(language=language)
    # Imported only when used: faster-whisper and its runtime are heavy to import, and
    # the `cloud` image does not have them.
    try:
        from video_processor.stt.local_whisper import LocalWhisperSpeechToText, default_model_dir
    except ImportError as error:
        raise ConfigurationError(
            f"the local STT engine is not installed ({error}); configure CLOVA "
            "(its block) or run the `full` image"
        ) from error
    return LocalWhisperSpeechToText(
        language=language, model_dir=settings.whisper_model_dir or default_model_dir()
    )


def build_media_engine(language: str, settings: Settings) -> ClovaSpeechLongForm:
    """The long-form engine, which transcribes the whole video in one job."""
    block = _require(ClovaSpeechCredentials, settings.blocks.clova_speech, "STT_ENGINE")
    return block.get_engine(language=language)


def request_throttle(kind: str, engine: str, settings: Settings) -> Callable[[], None] | None:
    """Waits for a slot of the engine's configured rate limit; None when it has none."""
    name = rate_limit_name(kind, engine)
    if name not in rate_limits(settings):
        return None
    return functools.partial(rate_limit, name, occupy=1, strict=True)


def build_summarizer(name: LlmEngineName, settings: Settings) -> Summarizer:
    if name is LlmEngineName.CLAUDE:
        claude = _require(ClaudeCredentials, settings.blocks.claude, "LLM_ENGINE")
        return claude.get_summarizer(
            policy=SummaryPolicy.from_settings(settings),
            before_request=request_throttle("llm", name, settings),
        )
    return LocalExtractiveSummarizer(max_chars=settings.summary_max_chars)

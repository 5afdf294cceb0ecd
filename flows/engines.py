"""Choosing the STT and summary engines: configuration names them, blocks hold their keys.

`STT_ENGINES` is the one table of speech-to-text engines: the block each needs, and whether
it hears the whole upload instead of the audio stage's chunks. Nothing else in the flow
tells engines apart by name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prefect.blocks.core import Block
from prefect.concurrency.sync import rate_limit

from blocks import ClaudeCredentials, ClovaCsrCredentials, ClovaSpeechCredentials, load_block
from video_processor.config import (
    BlockNames,
    LlmEngineName,
    Settings,
    SttEngineName,
    rate_limit_name,
    rate_limits,
)
from video_processor.errors import ConfigurationError
from video_processor.llm.base import Summarizer, SummaryPolicy
from video_processor.llm.local_extractive import LocalExtractiveSummarizer
from video_processor.stt.base import SttEngine

B = TypeVar("B", bound=Block)
SpeechBlock = ClovaCsrCredentials | ClovaSpeechCredentials


@dataclass(frozen=True)
class SttEngineSpec:
    """An STT engine the configuration can name: its block (``None``: it needs none) and
    whether it takes the whole upload (no audio chunks are cut for it)."""

    block_type: type[SpeechBlock] | None
    block_name: Callable[[BlockNames], str]
    whole_media: bool = False


# In the order `auto` prefers them: the first whose block exists, else the local engine.
STT_ENGINES: dict[SttEngineName, SttEngineSpec] = {
    SttEngineName.CLOVA_CSR: SttEngineSpec(ClovaCsrCredentials, lambda names: names.clova),
    SttEngineName.CLOVA_SPEECH: SttEngineSpec(
        ClovaSpeechCredentials, lambda names: names.clova_speech, whole_media=True
    ),
    SttEngineName.LOCAL: SttEngineSpec(None, lambda names: ""),
}


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
    for name, spec in STT_ENGINES.items():
        if spec.block_type is not None and _load_optional(
            spec.block_type, spec.block_name(settings.blocks)
        ):
            return name
    return SttEngineName.LOCAL


def resolve_llm_engine(settings: Settings) -> LlmEngineName:
    """`auto` means Claude when its block exists, the local summariser otherwise."""
    if settings.llm_engine is not LlmEngineName.AUTO:
        return settings.llm_engine
    claude = _load_optional(ClaudeCredentials, settings.blocks.claude)
    return LlmEngineName.CLAUDE if claude else LlmEngineName.LOCAL


def stt_block(name: SttEngineName, settings: Settings) -> SpeechBlock | None:
    """The block the engine is built from; ``None`` for an engine without one."""
    spec = STT_ENGINES[name]
    if spec.block_type is None:
        return None
    return _require(spec.block_type, spec.block_name(settings.blocks), "STT_ENGINE")


def build_stt_engine(name: SttEngineName, language: str, settings: Settings) -> SttEngine:
    block = stt_block(name, settings)
    if block is not None:
        return block.get_engine(language=language)
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


def llm_block(name: LlmEngineName, settings: Settings) -> ClaudeCredentials | None:
    """The block the summariser is built from; ``None`` for the local one."""
    if name is LlmEngineName.CLAUDE:
        return _require(ClaudeCredentials, settings.blocks.claude, "LLM_ENGINE")
    return None


def request_throttle(kind: str, engine: str, settings: Settings) -> Callable[[], None] | None:
    """Waits for a slot of the engine's configured rate limit; None when it has none."""
    name = rate_limit_name(kind, engine)
    if name not in rate_limits(settings):
        return None
    return functools.partial(rate_limit, name, occupy=1, strict=True)


def build_summarizer(name: LlmEngineName, settings: Settings) -> Summarizer:
    claude = llm_block(name, settings)
    if claude is not None:
        return claude.get_summarizer(
            policy=SummaryPolicy.from_settings(settings),
            before_request=request_throttle("llm", name, settings),
        )
    return LocalExtractiveSummarizer(max_chars=settings.summary_max_chars)

"""What every summary engine offers the pipeline, and the policy they share."""

from __future__ import annotations

from typing import Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from video_processor.config import Settings
from video_processor.errors import ConfigurationError
from video_processor.models import Summary, Transcript


class Summarizer(Protocol):
    """Summarises a transcript into the structured ``Summary`` (key points cite segments)."""

    name: str

    def summarize(self, transcript: Transcript) -> Summary: ...


def _configured(setting: str) -> Any:
    """The default of a setting: the policy's defaults are the configuration's."""
    return Settings.model_fields[setting].default


class SummaryPolicy(BaseModel):
    """Length bounds, long-transcript budgets and cost limits (``SUMMARY_*``, ``LLM_*``)."""

    model_config = ConfigDict(frozen=True)

    min_chars: int = Field(default=_configured("summary_min_chars"), ge=1)
    max_chars: int = Field(default=_configured("summary_max_chars"), ge=1)
    single_call_max_input_tokens: int = Field(
        default=_configured("llm_single_call_max_input_tokens"), ge=1
    )
    chunk_max_input_tokens: int = Field(default=_configured("llm_chunk_max_input_tokens"), ge=1)
    job_max_tokens: int = Field(default=_configured("llm_job_max_tokens"), ge=1)
    prompt_caching: bool = _configured("claude_prompt_caching")
    language: str = _configured("summary_language")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_chars > self.max_chars:
            raise ValueError(
                f"SUMMARY_MIN_CHARS ({self.min_chars}) > SUMMARY_MAX_CHARS ({self.max_chars})"
            )
        if self.chunk_max_input_tokens > self.single_call_max_input_tokens:
            raise ValueError(
                f"LLM_CHUNK_MAX_INPUT_TOKENS ({self.chunk_max_input_tokens}) > "
                f"LLM_SINGLE_CALL_MAX_INPUT_TOKENS ({self.single_call_max_input_tokens})"
            )
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> SummaryPolicy:
        try:
            return cls(
                min_chars=settings.summary_min_chars,
                max_chars=settings.summary_max_chars,
                single_call_max_input_tokens=settings.llm_single_call_max_input_tokens,
                chunk_max_input_tokens=settings.llm_chunk_max_input_tokens,
                job_max_tokens=settings.llm_job_max_tokens,
                prompt_caching=settings.claude_prompt_caching,
                language=settings.summary_language,
            )
        except ValidationError as exc:
            problems = "; ".join(str(error["msg"]) for error in exc.errors())
            raise ConfigurationError(f"invalid summary configuration: {problems}") from exc

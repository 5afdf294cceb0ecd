"""What the Messages API takes and answers (/work/shared/contracts.md §5): bodies, models,
limits and the error envelope."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal, Self, get_args

from anthropic._data import DEPRECATED_MODELS
from anthropic.types import Model
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# 2026-10-21 is what the pinned SDK (anthropic 2.14.0) sends; the documentation names 2023-06-01.
API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
MAX_REQUEST_BYTES = 32 * 1024 * 1024
CONTEXT_WINDOW_TOKENS = 200_000
# The pinned SDK's model ids (its Literal, without the open ``str``).
KNOWN_MODELS = frozenset(get_args(get_args(Model)[0]))
DEFAULT_MAX_OUTPUT_TOKENS = 64_000
MODEL_MAX_OUTPUT_TOKENS = {"claude-opus-4-6": 128_000}
DATED_SUFFIX = re.compile(r"-\d{8}$")
ORDINAL_SUFFIX = re.compile(r"(\d+)(st|nd|rd|th)")

ERRORS_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
UNPARSABLE_BODY = "There was an error parsing the body of your request"


class ContentBlock(BaseModel):
    """A content block; only text blocks matter to the fake, others pass through."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_blocks_have_text(self) -> Self:
        if self.type == "text" and self.text is None:
            raise ValueError("text blocks need a 'text' string")
        return self


Content = str | list[ContentBlock]


class InputMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: Content


class ToolDefinition(BaseModel):
    """A client tool: a name and an object ``input_schema``."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,128}$")
    description: str | None = None
    input_schema: dict[str, JsonValue]

    @model_validator(mode="after")
    def _object_schema(self) -> Self:
        if self.input_schema.get("type") != "object":
            raise ValueError("input_schema: type must be 'object'")
        return self


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class CountTokensRequest(BaseModel):
    """The body of ``/v1/messages/count_tokens`` (and the shared part of ``/v1/messages``)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[InputMessage] = Field(min_length=1)
    system: Content | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: Annotated[int, Field(strict=True, ge=1)]
    temperature: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] = Field(default_factory=list)
    stream: bool = False


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    """``{"type": "error", "error": {...}, "request_id": "req_..."}``."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str


def end_of_life(model: str) -> date | None:
    """The end-of-life date the pinned SDK gives a deprecated model (``"November 30th, 2026"``)."""
    written = DEPRECATED_MODELS.get(model)
    if written is None:
        return None
    return datetime.strptime(ORDINAL_SUFFIX.sub(r"\1", written), "%B %d, %Y").date()


def known_model(model: str, today: date | None = None) -> str | None:
    """The base id of a model the API serves today (dated snapshots included), else None."""
    if model not in KNOWN_MODELS:
        return None
    retired = end_of_life(model)
    if retired is not None and (today or datetime.now(UTC).date()) > retired:
        return None
    return DATED_SUFFIX.sub("", model)


def max_output_tokens(base_model: str) -> int:
    return MODEL_MAX_OUTPUT_TOKENS.get(base_model, DEFAULT_MAX_OUTPUT_TOKENS)


def empty_content_problem(messages: list[InputMessage]) -> str | None:
    """The real API's refusal of empty content, if one applies."""
    for index, message in enumerate(messages):
        if isinstance(message.content, list) and any(
            block.type == "text" and not (block.text or "").strip() for block in message.content
        ):
            return f"messages.{index}: text content blocks must contain non-whitespace text"
        is_final_assistant = index == len(messages) - 1 and message.role == "assistant"
        if not message.content and not is_final_assistant:
            return (
                f"messages.{index}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )
    return None

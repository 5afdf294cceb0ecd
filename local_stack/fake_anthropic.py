"""Fake Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Implements the documented API: the API key (``x-api-key``, or ``Authorization: Bearer`` as
the pinned SDK sends it), ``anthropic-version``, body validation, the model ids the pinned
SDK lists (``anthropic.types.Model``; a model past the end-of-life date of the SDK's
``DEPRECATED_MODELS`` is gone: 404) and their output limits, the 32 MB request limit and the
200K-token context window; errors use the documented envelope with a ``request_id`` (also
the ``request-id`` header of every reply) and 429 carries ``retry-after``. The reply is a
deterministic Korean "summary", ``요약: `` plus the start of the ``<transcript>`` in the last
user message, cut at ``max_tokens`` (``stop_reason: "max_tokens"``) or at a stop sequence as
the real API does. Tokens are estimated conservatively (two characters a token). Streaming
is not faked: ``"stream": true`` is refused.

Stop reasons: besides ``end_turn``, ``stop_sequence``, ``max_tokens`` and ``tool_use``, the
faults ``refusal``, ``pause_turn`` and ``model_context_window_exceeded`` make the next reply
end with that stop reason (a refusal has no content, the other two a cut-off reply).

Tool use: with ``tools`` and a ``tool_choice`` of ``{"type": "tool", "name": ...}`` (or
``any``) the reply is one ``tool_use`` block (``stop_reason: "tool_use"``). Its input
imitates a model filling the pipeline's summary tool: it reads the numbered lines
``[id mm:ss] text`` (or ``[3,5 mm:ss] text``) of the last user message that has any, cites
those ids, and keeps the summary within an ``N~M자`` bound the prompt states. Config
``tool_input`` replaces it; faults ``invalid_tool_input`` (schema-invalid) and
``bad_citation`` (cites a segment that does not exist) spoil one reply.

Prompt caching: a ``cache_control`` block on a tool or system block makes the prefix up
to it cacheable when it has at least ``MIN_CACHEABLE_TOKENS``; the first request writes
it (``cache_creation_input_tokens``), later ones read it (``cache_read_input_tokens``),
and ``input_tokens`` counts only the rest, as the real API reports.

``GET /__admin/stats`` holds ``last_request``: the validated body of the last Messages
request that reached the model (status faults answer before it), so tests can read the
exact prompt the pipeline sent; ``POST /__admin/reset`` forgets it.

Run it alone with ``python -m local_stack.fake_anthropic --port 8092``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self, TypeVar, get_args

from anthropic._data import DEPRECATED_MODELS
from anthropic.types import Model, StopReason
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from local_stack.http_fake import (
    DEFAULT_HOST,
    FakeHTTPServer,
    FakeService,
    Fault,
    Request,
    Response,
    cli_parser,
    json_response,
    serve_until_signalled,
    start_server,
    validation_message,
)

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# 2026-10-21 is what the pinned SDK (anthropic 2.14.0) sends; the documentation names 2023-06-01.
API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
MAX_REQUEST_BYTES = 32 * 1024 * 1024
CONTEXT_WINDOW_TOKENS = 200_000
# Korean runs about one to two characters a token; two overestimates English text.
CHARS_PER_TOKEN = 2
SUMMARY_PREFIX = "요약: "
SUMMARY_SOURCE_CHARS = 200
TRANSCRIPT_TAG = re.compile(r"<transcript>(.*?)</transcript>", re.DOTALL)
# The pinned SDK's model ids (its Literal, without the open ``str``).
KNOWN_MODELS = frozenset(get_args(get_args(Model)[0]))
DEFAULT_MAX_OUTPUT_TOKENS = 64_000
MODEL_MAX_OUTPUT_TOKENS = {"claude-opus-4-6": 128_000}
DATED_SUFFIX = re.compile(r"-\d{8}$")
ORDINAL_SUFFIX = re.compile(r"(\d+)(st|nd|rd|th)")
DEFAULT_API_KEY = "test-anthropic-key"
MIN_CACHEABLE_TOKENS = 1024
NUMBERED_LINE = re.compile(r"^\[(\d+(?:\s*,\s*\d+)*)(?:\s+\d+(?::\d{2}){1,2})?\]\s*(.+)$", re.M)
PART_SUMMARY_LINE = re.compile(r"^요약:\s*(.+)$", re.M)
LENGTH_BOUNDS = re.compile(r"(\d+)~(\d+)자")
TOOL_SUMMARY_CHARS = 300
TOOL_KEY_POINTS = 5
BAD_SEGMENT_ID = 999_999
DEFAULT_RETRY_AFTER_S = 1

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

# Faults that end the next reply with the stop reason of their name.
STOP_REASON_FAULTS: dict[str, StopReason] = {
    "refusal": "refusal",
    "pause_turn": "pause_turn",
    "model_context_window_exceeded": "model_context_window_exceeded",
}


class AnthropicConfig(BaseModel):
    """Runtime settings; ``text`` replaces the derived summary; latency grows per output token."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = DEFAULT_API_KEY
    text: str | None = None
    base_latency_s: float = Field(default=0.0, ge=0)
    per_output_token_s: float = Field(default=0.0, ge=0)
    retry_after_s: int = Field(default=DEFAULT_RETRY_AFTER_S, ge=0)
    tool_input: dict[str, JsonValue] | None = None


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


RequestT = TypeVar("RequestT", bound=CountTokensRequest)


def presented_api_key(request: Request) -> str | None:
    """The key from ``x-api-key``, else from ``Authorization: Bearer`` (what SDK 2.x sends)."""
    api_key = request.header("x-api-key")
    if api_key is not None:
        return api_key
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def content_text(content: Content | None) -> str:
    """The text of a message's content (text blocks joined by newlines)."""
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(block.text for block in content if block.text is not None)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _block_text(block: ContentBlock) -> str:
    """What a block costs: its text, or its JSON for tool_use/tool_result blocks."""
    if block.text is not None:
        return block.text
    return json.dumps(block.model_dump(exclude={"type", "text"}), ensure_ascii=False)


def _content_cost_text(content: Content | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(_block_text(block) for block in content)


def _tools_text(body: CountTokensRequest) -> str:
    tools = [tool.model_dump(exclude_none=True) for tool in body.tools or []]
    return json.dumps(tools, ensure_ascii=False) if tools else ""


def input_tokens_of(body: CountTokensRequest) -> int:
    texts = [
        _tools_text(body),
        _content_cost_text(body.system),
        *(_content_cost_text(m.content) for m in body.messages),
    ]
    return sum(estimate_tokens(text) for text in texts if text)


def cacheable_prefix(body: CountTokensRequest) -> tuple[str, int] | None:
    """(key, tokens) of the prefix up to the last ``cache_control`` mark, if there is one.

    The prefix order is tools, then system (messages are not looked at by the fake)."""
    tools = [tool.model_dump(exclude_none=True) for tool in body.tools or []]
    system = body.system if isinstance(body.system, list) else []
    marked_tool = max((i for i, t in enumerate(tools) if "cache_control" in t), default=-1)
    marked_system = max(
        (i for i, b in enumerate(system) if (b.model_extra or {}).get("cache_control")),
        default=-1,
    )
    if marked_system >= 0:
        parts = [json.dumps(tools, ensure_ascii=False) if tools else ""]
        parts += [_block_text(block) for block in system[: marked_system + 1]]
    elif marked_tool >= 0:
        parts = [json.dumps(tools[: marked_tool + 1], ensure_ascii=False)]
    else:
        return None
    tokens = sum(estimate_tokens(part) for part in parts if part)
    if tokens < MIN_CACHEABLE_TOKENS:
        return None
    key = hashlib.sha256(f"{body.model}\0{json.dumps(parts)}".encode()).hexdigest()
    return key, tokens


def numbered_lines(body: CountTokensRequest) -> tuple[str, list[tuple[list[int], str]]]:
    """The last user text with ``[id mm:ss] text`` lines, and those lines (ids, text)."""
    for message in reversed(body.messages):
        if message.role != "user":
            continue
        text = content_text(message.content)
        lines = [
            ([int(i) for i in ids.split(",")], " ".join(line.split()))
            for ids, line in NUMBERED_LINE.findall(text)
        ]
        if lines:
            return text, lines
    return "", []


def _hangul_share(text: str) -> float:
    letters = [char for char in text if char.isalpha()]
    hangul = [char for char in letters if "\uac00" <= char <= "\ud7a3"]
    return len(hangul) / len(letters) if letters else 0.0


def derive_tool_input(body: CountTokensRequest) -> dict[str, JsonValue]:
    """What a well-behaved model would put into the summary tool for this prompt."""
    prompt, lines = numbered_lines(body)
    if not lines:
        text = summarize(body).removeprefix(SUMMARY_PREFIX) or "내용 없음"
        lines = [([0], text)]
    count = min(TOOL_KEY_POINTS, len(lines))
    picks = [lines[round(i * (len(lines) - 1) / max(1, count - 1))] for i in range(count)]
    sources = [text for _, text in lines] + PART_SUMMARY_LINE.findall(prompt)
    low, high = 1, TOOL_SUMMARY_CHARS
    bounds = LENGTH_BOUNDS.search(prompt)
    if bounds:
        low, high = int(bounds[1]), int(bounds[2])
    summary = " ".join(sources)[: min(high, max(low, TOOL_SUMMARY_CHARS))].strip()
    words = Counter(
        word.strip(".,?!…\"'") for _, text in lines for word in text.split() if len(word) >= 2
    )
    keywords: list[JsonValue] = [word for word, _ in words.most_common(5) if word] or ["요약"]
    key_points: list[JsonValue] = [
        {"text": text[:100], "segment_ids": list(ids)} for ids, text in picks
    ]
    return {
        "title": picks[0][1][:30],
        "summary": summary,
        "key_points": key_points,
        "keywords": keywords,
        "language": "ko" if _hangul_share(summary) >= 0.5 else "en",
    }


def spoil_tool_input(tool_input: dict[str, JsonValue], kind: str) -> dict[str, JsonValue]:
    if kind == "invalid_tool_input":
        return {"title": "", "summary": 42, "keywords": "not a list"}
    points = tool_input.get("key_points")
    first = points[0] if isinstance(points, list) and points else None
    if isinstance(first, dict):
        first["segment_ids"] = [BAD_SEGMENT_ID]
    return tool_input


def summarize(body: CountTokensRequest) -> str:
    """``요약: `` plus the first characters of the last user message's transcript."""
    last_user = next((m for m in reversed(body.messages) if m.role == "user"), None)
    text = content_text(last_user.content) if last_user else ""
    tagged = TRANSCRIPT_TAG.search(text)
    source = " ".join((tagged.group(1) if tagged else text).split())
    return SUMMARY_PREFIX + source[:SUMMARY_SOURCE_CHARS]


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


def forced_tool(body: CountTokensRequest) -> str | None:
    """The tool the reply must call (``tool_choice`` ``tool``, or ``any``: the first)."""
    choice = body.tool_choice
    if choice is None or not body.tools:
        return None
    if choice.type == "tool":
        return choice.name
    return body.tools[0].name if choice.type == "any" else None


def request_problem(body: CountTokensRequest, base_model: str) -> str | None:
    """Why the real API would refuse a well-formed body for a known model, if it would."""
    problem = empty_content_problem(body.messages)
    if problem is not None:
        return problem
    names = [tool.name for tool in body.tools or []]
    if len(set(names)) != len(names):
        return "tools: tool names must be unique"
    choice = body.tool_choice
    if choice is not None and choice.type == "tool" and choice.name not in names:
        return f"tool_choice.name: tool {choice.name!r} not found in tools"
    if isinstance(body, MessagesRequest):
        limit = max_output_tokens(base_model)
        if body.max_tokens > limit:
            return (
                f"max_tokens: {body.max_tokens} > {limit}, which is the maximum allowed "
                f"number of output tokens for {body.model}"
            )
        if body.stream:
            return "stream: the fake Messages API does not stream"
    tokens = input_tokens_of(body)
    if tokens > CONTEXT_WINDOW_TOKENS:
        return f"prompt is too long: {tokens} tokens > {CONTEXT_WINDOW_TOKENS} maximum"
    return None


def cut_at_stop_sequence(text: str, stop_sequences: list[str]) -> tuple[str, str | None]:
    """The text before the earliest stop sequence, and that sequence (None when none)."""
    hits = [(text.find(seq), seq) for seq in stop_sequences if seq and seq in text]
    if not hits:
        return text, None
    position, sequence = min(hits)
    return text[:position], sequence


class FakeAnthropic(FakeService[AnthropicConfig]):
    """The Messages API: validates like the real one, answers with a derived summary."""

    name = "fake-anthropic"
    extra_fault_kinds = (
        frozenset({"max_tokens", "empty", "invalid_tool_input", "bad_citation"})
        | STOP_REASON_FAULTS.keys()
    )

    def __init__(self, config: AnthropicConfig | None = None) -> None:
        super().__init__(config or AnthropicConfig())
        self._lock = threading.Lock()
        self._messages = 0
        self._input_tokens = 0
        self._output_tokens = 0
        self._cache_read_tokens = 0
        self._cache_creation_tokens = 0
        self._cached_prefixes: set[str] = set()
        self._last_request: dict[str, JsonValue] | None = None

    def accepts_faults(self, request: Request) -> bool:
        return request.method == "POST" and request.path in (MESSAGES_PATH, COUNT_TOKENS_PATH)

    def route(self, request: Request, fault: Fault | None) -> Response:
        if request.method == "POST" and request.path == MESSAGES_PATH:
            messages = self._parse(request, MessagesRequest)
            if isinstance(messages, Response):
                return messages
            with self._lock:
                self._last_request = messages.model_dump(mode="json", exclude_none=True)
            return self._reply(messages, fault)
        if request.method == "POST" and request.path == COUNT_TOKENS_PATH:
            counted = self._parse(request, CountTokensRequest)
            if isinstance(counted, Response):
                return counted
            return json_response(200, {"input_tokens": input_tokens_of(counted)})
        return self._error(request, 404, "not_found_error", f"Not found: {request.path}")

    def _parse(self, request: Request, model: type[RequestT]) -> RequestT | Response:
        """The validated body, or the error the real API answers with."""
        if presented_api_key(request) != self.config.api_key:
            return self._error(request, 401, "authentication_error", "invalid x-api-key")
        version = request.header("anthropic-version")
        if version is None:
            return self._invalid(request, "anthropic-version: header is required")
        if version not in API_VERSIONS:
            return self._invalid(request, f"anthropic-version: unknown version {version!r}")
        if len(request.body) > MAX_REQUEST_BYTES:
            return self._error(request, 413, *ERRORS_BY_STATUS[413])
        try:
            payload = json.loads(request.body)
        except ValueError:
            return self._invalid(request, "There was an error parsing the body of your request")
        if not isinstance(payload, dict):
            return self._invalid(request, "body: Input should be an object")
        try:
            body = model.model_validate(payload)
        except ValidationError as exc:
            return self._invalid(request, validation_message(exc))
        base_model = known_model(body.model)
        if base_model is None:
            return self._error(request, 404, "not_found_error", f"model: {body.model}")
        problem = request_problem(body, base_model)
        return body if problem is None else self._invalid(request, problem)

    def _reply(self, body: MessagesRequest, fault: Fault | None) -> Response:
        tool = forced_tool(body)
        if tool is not None:
            return self._tool_reply(body, tool, fault)
        config = self.config
        text, stop_sequence = cut_at_stop_sequence(
            config.text if config.text is not None else summarize(body), body.stop_sequences
        )
        stop_reason: StopReason = "end_turn" if stop_sequence is None else "stop_sequence"
        output_tokens = estimate_tokens(text)
        forced_cut = fault is not None and fault.kind == "max_tokens"
        if forced_cut or output_tokens > body.max_tokens:
            keep_chars = body.max_tokens * CHARS_PER_TOKEN
            text = text[: min(keep_chars, len(text) // 2) if forced_cut else keep_chars]
            stop_reason, stop_sequence, output_tokens = "max_tokens", None, body.max_tokens
        kind = fault.kind if fault is not None else None
        if kind in STOP_REASON_FAULTS:
            stop_reason, stop_sequence = STOP_REASON_FAULTS[kind], None
            text = "" if kind == "refusal" else text[: len(text) // 2]
            output_tokens = estimate_tokens(text)
        empty = kind in ("empty", "refusal")
        if empty:
            output_tokens = 0
        input_tokens = input_tokens_of(body)
        self.sleep(config.base_latency_s + config.per_output_token_s * output_tokens)
        with self._lock:
            self._messages += 1
            self._input_tokens += input_tokens
            self._output_tokens += output_tokens
        return json_response(
            200,
            {
                "id": f"msg_{secrets.token_hex(12)}",
                "type": "message",
                "role": "assistant",
                "content": [] if empty else [{"type": "text", "text": text}],
                "model": body.model,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        )

    def _tool_reply(self, body: MessagesRequest, tool: str, fault: Fault | None) -> Response:
        """One ``tool_use`` block for the forced tool, with the caching the prefix earns."""
        config = self.config
        kind = fault.kind if fault is not None else None
        tool_input: dict[str, Any] = (
            json.loads(json.dumps(config.tool_input))
            if config.tool_input is not None
            else derive_tool_input(body)
        )
        if kind in ("invalid_tool_input", "bad_citation"):
            tool_input = spoil_tool_input(tool_input, kind)
        block: dict[str, JsonValue] = {
            "type": "tool_use",
            "id": f"toolu_{secrets.token_hex(12)}",
            "name": tool,
            "input": tool_input,
        }
        stop_reason: StopReason = "tool_use"
        output_tokens = estimate_tokens(json.dumps(tool_input, ensure_ascii=False))
        content: list[JsonValue] = [block]
        if kind == "max_tokens" or output_tokens > body.max_tokens:
            block["input"] = {}
            stop_reason, output_tokens = "max_tokens", body.max_tokens
        if kind in STOP_REASON_FAULTS:
            # Refused: nothing; paused or out of context: the tool call never completed.
            stop_reason = STOP_REASON_FAULTS[kind]
            content = [] if kind == "refusal" else [{"type": "text", "text": "요약을 작성"}]
            output_tokens = 0 if kind == "refusal" else 4
        if kind == "empty":
            content, output_tokens = [], 0
        total = input_tokens_of(body)
        cache_read = cache_creation = 0
        prefix = cacheable_prefix(body)
        with self._lock:
            if prefix is not None:
                key, cached = prefix
                if key in self._cached_prefixes:
                    cache_read = cached
                else:
                    cache_creation = cached
                    self._cached_prefixes.add(key)
        input_tokens = max(0, total - cache_read - cache_creation)
        self.sleep(config.base_latency_s + config.per_output_token_s * output_tokens)
        with self._lock:
            self._messages += 1
            self._input_tokens += input_tokens
            self._output_tokens += output_tokens
            self._cache_read_tokens += cache_read
            self._cache_creation_tokens += cache_creation
        return json_response(
            200,
            {
                "id": f"msg_{secrets.token_hex(12)}",
                "type": "message",
                "role": "assistant",
                "content": content,
                "model": body.model,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": cache_creation,
                    "cache_read_input_tokens": cache_read,
                },
            },
        )

    def _invalid(self, request: Request, message: str) -> Response:
        return self._error(request, 400, "invalid_request_error", message)

    def _error(self, request: Request, status: int, error_type: str, message: str) -> Response:
        headers = {"retry-after": str(self.config.retry_after_s)} if status == 429 else {}
        payload: JsonValue = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id(request),
        }
        return json_response(status, payload, headers)

    def error_response(self, request: Request, status: int) -> Response:
        error_type, message = ERRORS_BY_STATUS.get(status, ERRORS_BY_STATUS[500])
        return self._error(request, status, error_type, message)

    def decorate(self, request: Request, response: Response) -> Response:
        return Response(
            response.status, response.body, {**response.headers, "request-id": request_id(request)}
        )

    def extra_stats(self) -> dict[str, JsonValue]:
        with self._lock:
            return {
                "messages": self._messages,
                "input_tokens": self._input_tokens,
                "output_tokens": self._output_tokens,
                "cache_read_input_tokens": self._cache_read_tokens,
                "cache_creation_input_tokens": self._cache_creation_tokens,
                "last_request": self._last_request,
            }

    def reset_state(self) -> None:
        with self._lock:
            self._messages = 0
            self._input_tokens = 0
            self._output_tokens = 0
            self._cache_read_tokens = 0
            self._cache_creation_tokens = 0
            self._cached_prefixes.clear()
            self._last_request = None


def request_id(request: Request) -> str:
    return f"req_{request.request_id}"


def start_fake_anthropic(
    config: AnthropicConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeAnthropic]:
    """Serve a fake Messages API from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeAnthropic(config), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake until SIGINT/SIGTERM."""
    parser = cli_parser("Fake Anthropic Messages API.")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--text", default=None, help="fixed reply instead of the derived summary")
    parser.add_argument("--base-latency-s", type=float, default=0.0)
    parser.add_argument("--per-output-token-s", type=float, default=0.0)
    parser.add_argument("--retry-after-s", type=int, default=DEFAULT_RETRY_AFTER_S)
    args = parser.parse_args(argv)
    config = AnthropicConfig(
        api_key=args.api_key,
        text=args.text,
        base_latency_s=args.base_latency_s,
        per_output_token_s=args.per_output_token_s,
        retry_after_s=args.retry_after_s,
    )
    serve_until_signalled(FakeAnthropic(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

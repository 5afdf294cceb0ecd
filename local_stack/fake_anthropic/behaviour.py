"""The fake Messages API's behaviour: its checks, token counts, replies and caching.

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
imitates a model filling the pipeline's summary tool: it reads the last user message that
has ``[id mm:ss] text`` lines with the prompt module's own readers
(``video_processor.llm.prompt.read_lines`` and the others, which invert its formatters),
cites those ids, and keeps the summary within the length bounds the prompt states. Config
``tool_input`` replaces it; faults ``invalid_tool_input`` (schema-invalid) and
``bad_citation`` (cites a segment that does not exist) spoil one reply.

Prompt caching: a ``cache_control`` block on a tool or system block makes the prefix up
to it cacheable when it has at least ``MIN_CACHEABLE_TOKENS``; the first request writes
it (``cache_creation_input_tokens``), later ones read it (``cache_read_input_tokens``),
and ``input_tokens`` counts only the rest, as the real API reports.

``GET /__admin/stats`` holds ``last_request``: the validated body of the last Messages
request that reached the model (status faults answer before it), so tests can read the
exact prompt the pipeline sent; ``POST /__admin/reset`` forgets it.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from anthropic.types import StopReason
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from local_stack.fake_anthropic import service
from local_stack.fake_anthropic.schema import (
    API_VERSIONS,
    CONTEXT_WINDOW_TOKENS,
    COUNT_TOKENS_PATH,
    ERRORS_BY_STATUS,
    MAX_REQUEST_BYTES,
    MESSAGES_PATH,
    UNPARSABLE_BODY,
    Content,
    ContentBlock,
    CountTokensRequest,
    MessagesRequest,
    empty_content_problem,
    known_model,
    max_output_tokens,
)
from local_stack.http_fake import (
    FakeService,
    Fault,
    Refused,
    Request,
    Response,
    is_json_error,
    json_response,
    validation_message,
)
from video_processor.llm.prompt import (
    TRANSCRIPT_TAG,
    PromptLine,
    read_length_bounds,
    read_lines,
    read_part_summaries,
    read_tagged,
)

# Korean runs about one to two characters a token; two overestimates English text.
CHARS_PER_TOKEN = 2
SUMMARY_PREFIX = "요약: "
SUMMARY_SOURCE_CHARS = 200
DEFAULT_API_KEY = "test-anthropic-key"
MIN_CACHEABLE_TOKENS = 1024
TOOL_SUMMARY_CHARS = 300
TOOL_KEY_POINTS = 5
BAD_SEGMENT_ID = 999_999
DEFAULT_RETRY_AFTER_S = 1

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


def prompt_lines(body: CountTokensRequest) -> tuple[str, list[PromptLine]]:
    """The last user text with ``[ids clock] text`` lines, and those lines."""
    for message in reversed(body.messages):
        if message.role != "user":
            continue
        text = content_text(message.content)
        lines = read_lines(text)
        if lines:
            return text, lines
    return "", []


def _hangul_share(text: str) -> float:
    letters = [char for char in text if char.isalpha()]
    hangul = [char for char in letters if "\uac00" <= char <= "\ud7a3"]
    return len(hangul) / len(letters) if letters else 0.0


def derive_tool_input(body: CountTokensRequest) -> dict[str, JsonValue]:
    """What a well-behaved model would put into the summary tool for this prompt."""
    prompt, lines = prompt_lines(body)
    points = [(list(line.segment_ids), " ".join(line.text.split())) for line in lines]
    if not points:
        text = summarize(body).removeprefix(SUMMARY_PREFIX) or "내용 없음"
        points = [([0], text)]
    count = min(TOOL_KEY_POINTS, len(points))
    picks = [points[round(i * (len(points) - 1) / max(1, count - 1))] for i in range(count)]
    sources = [text for _, text in points] + read_part_summaries(prompt)
    low, high = read_length_bounds(prompt) or (1, TOOL_SUMMARY_CHARS)
    summary = " ".join(sources)[: min(high, max(low, TOOL_SUMMARY_CHARS))].strip()
    words = Counter(
        word.strip(".,?!…\"'") for _, text in points for word in text.split() if len(word) >= 2
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
    tagged = read_tagged(text, TRANSCRIPT_TAG)
    source = " ".join((text if tagged is None else tagged).split())
    return SUMMARY_PREFIX + source[:SUMMARY_SOURCE_CHARS]


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

    def create_app(self) -> FastAPI:
        return service.create_app(self)

    def accepts_faults(self, method: str, path: str) -> bool:
        return method == "POST" and path in (MESSAGES_PATH, COUNT_TOKENS_PATH)

    def refusal(self, request: Request) -> Response | None:
        """The refusal of the request's key, version or size (checked before its body)."""
        if presented_api_key(request) != self.config.api_key:
            return self._error(request, 401, "authentication_error", "invalid x-api-key")
        version = request.header("anthropic-version")
        if version is None:
            return self._invalid(request, "anthropic-version: header is required")
        if version not in API_VERSIONS:
            return self._invalid(request, f"anthropic-version: unknown version {version!r}")
        if len(request.body) > MAX_REQUEST_BYTES:
            return self._error(request, 413, *ERRORS_BY_STATUS[413])
        return None

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        message = UNPARSABLE_BODY if is_json_error(errors) else validation_message(errors)
        return self._invalid(request, message)

    def not_found(self, request: Request) -> Response:
        return self._error(request, 404, "not_found_error", f"Not found: {request.path}")

    def checked(self, request: Request, body: CountTokensRequest) -> None:
        """Refuse, as the real API would, a request with a valid body (``Refused``)."""
        refused = self.refusal(request)
        if refused is not None:
            raise Refused(refused)
        base_model = known_model(body.model)
        if base_model is None:
            raise Refused(self._error(request, 404, "not_found_error", f"model: {body.model}"))
        problem = request_problem(body, base_model)
        if problem is not None:
            raise Refused(self._invalid(request, problem))

    def messages(self, request: Request, body: MessagesRequest, fault: Fault | None) -> Response:
        """``POST /v1/messages``."""
        self.checked(request, body)
        with self._lock:
            self._last_request = body.model_dump(mode="json", exclude_none=True)
        return self._reply(body, fault)

    def count_tokens(self, request: Request, body: CountTokensRequest) -> Response:
        """``POST /v1/messages/count_tokens``."""
        self.checked(request, body)
        return json_response(200, {"input_tokens": input_tokens_of(body)})

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

    def reply_headers(self, request: Request) -> dict[str, str]:
        return {"request-id": request_id(request)}

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

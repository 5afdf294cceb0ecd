"""Claude through the `anthropic` SDK (Messages API): a structured, checked, budgeted summary.

- **Structured**: every call forces the one ``record_summary`` tool whose ``input_schema``
  is ``SummaryDraft``'s JSON schema; the tool input is validated (shape, length bounds,
  language, empty fields, citations). An invalid reply is answered once with a
  ``tool_result`` naming the problems; a second invalid reply is ``LLM_BAD_RESPONSE``.
- **Long transcripts**: a conservative local estimate decides; only when it says the prompt
  is over ``single_call_max_input_tokens`` does the engine ask ``count_tokens`` (falling back
  to the estimate when the endpoint is unavailable). Over budget, the transcript is split
  into segment-aligned chunks, each summarised with citations to its own segments (map),
  then the part summaries, citations included, are merged (reduce; in levels if even they
  do not fit). The final key points may cite only segments the parts cited.
- **Cost**: the tool and system prompt are a fixed prefix marked ``cache_control`` (the same
  for every call of every job, so map steps, retries and jobs close in time read it from
  the cache; below the model's minimum cacheable length the API simply does not cache).
  Every call lands in the ``LlmUsage`` ledger; a call that would take the job past
  ``job_max_tokens`` is not made (``LLM_BAD_RESPONSE``).

The SDK does not retry (``max_retries=0``): Prefect tasks do, for the errors
`video_processor.http_errors` calls transient.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
from anthropic.types import Message, MessageParam, TextBlockParam, ToolChoiceToolParam, ToolParam

from video_processor.config import DEFAULT_CLAUDE_TIMEOUT_S
from video_processor.errors import SummaryError, SummaryRefused, SummaryTimeout
from video_processor.http_errors import HttpErrors
from video_processor.llm.base import SummaryPolicy
from video_processor.llm.prompt import (
    SYSTEM_PROMPT,
    part_block,
    problems_message,
    reduce_message,
    segment_line,
    transcript_message,
)
from video_processor.llm.structured import (
    TOOL_NAME,
    SummaryDraft,
    SummaryLimits,
    parse_draft,
    summary_problems,
    summary_tool,
    to_summary,
)
from video_processor.llm.tokens import chunk_segments, estimate_tokens
from video_processor.models import LlmUsage, Summary, Transcript, TranscriptSegment

ERRORS = HttpErrors("Claude", SummaryError, SummaryTimeout)
MAX_PROBLEMS_REPORTED = 8
# Stop reasons that end the call: (message, retryable). ``tool_use`` is the expected one;
# ``end_turn`` and ``stop_sequence`` without the tool call get the one corrective turn.
_FAILING_STOP_REASONS: dict[str, tuple[str, bool]] = {
    "max_tokens": ("summary cut off at max_tokens={max_tokens}; raise CLAUDE_MAX_TOKENS", False),
    "model_context_window_exceeded": (
        "the prompt plus max_tokens={max_tokens} filled the model's context window "
        "(stop_reason model_context_window_exceeded); lower LLM_SINGLE_CALL_MAX_INPUT_TOKENS "
        "or CLAUDE_MAX_TOKENS",
        False,
    ),
    "pause_turn": (
        "Claude paused the turn (stop_reason pause_turn) before recording the summary; "
        "the task's retry asks again",
        True,
    ),
}


@dataclass
class _Ledger:
    """Usage of one ``summarize`` call, and the budget it may not pass."""

    budget_tokens: int
    usage: LlmUsage = field(default_factory=LlmUsage)

    def charge(self, message: Message) -> None:
        used = message.usage
        self.usage = self.usage.plus(
            LlmUsage(
                llm_calls=1,
                input_tokens=used.input_tokens,
                output_tokens=used.output_tokens,
                cache_read_input_tokens=used.cache_read_input_tokens or 0,
                cache_creation_input_tokens=used.cache_creation_input_tokens or 0,
            )
        )

    def counted(self) -> None:
        self.usage = self.usage.plus(LlmUsage(token_count_calls=1))

    def check(self, planned_input_tokens: int) -> None:
        spent = self.usage.total_tokens
        if spent + planned_input_tokens > self.budget_tokens:
            raise SummaryError(
                f"per-job token budget exceeded: {spent} tokens spent in {self.usage.llm_calls} "
                f"calls, the next call needs about {planned_input_tokens} more, "
                f"LLM_JOB_MAX_TOKENS={self.budget_tokens}"
            )


@dataclass(frozen=True)
class _Part:
    """A summarised stretch of the transcript (a chunk, or merged chunks)."""

    draft: SummaryDraft
    start_s: float
    end_s: float


class ClaudeSummarizer:
    """Structured summaries from Claude; map-reduce for transcripts over the call budget."""

    name = "claude"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        max_tokens: int,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_CLAUDE_TIMEOUT_S,
        summary_max_chars: int | None = None,
        policy: SummaryPolicy | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        """``before_request`` runs before every Messages call (the orchestrator's rate limit)."""
        self.model = model
        self._before_request = before_request
        self._max_tokens = max_tokens
        if policy is None:
            defaults = SummaryPolicy()
            policy = SummaryPolicy(
                max_chars=summary_max_chars or defaults.max_chars,
                min_chars=min(defaults.min_chars, summary_max_chars or defaults.min_chars),
            )
        self.policy = policy
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
        )
        system: dict[str, Any] = {"type": "text", "text": SYSTEM_PROMPT}
        if policy.prompt_caching:
            system["cache_control"] = {"type": "ephemeral"}
        self._system = [cast(TextBlockParam, system)]
        self._tools = [cast(ToolParam, summary_tool())]
        self._tool_choice: ToolChoiceToolParam = {"type": "tool", "name": TOOL_NAME}
        self._fixed_tokens = estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(
            json.dumps(self._tools, ensure_ascii=False)
        )

    def close(self) -> None:
        self._client.close()

    # --- the pipeline's entry point -------------------------------------------------------

    def summarize(self, transcript: Transcript) -> Summary:
        spoken = [segment for segment in transcript.segments if segment.text.strip()]
        if not spoken:
            raise SummaryError("transcript is empty: nothing to summarise")
        ledger = _Ledger(self.policy.job_max_tokens)
        limits = self._limits(transcript)
        message = transcript_message(spoken, limits)
        estimate = self._fixed_tokens + estimate_tokens(message)
        scale = 1.0
        if estimate > self.policy.single_call_max_input_tokens:
            counted = self._count_tokens(ledger, message)
            if counted is not None:
                scale = min(1.0, counted / estimate)
        planned = math.ceil(estimate * scale)
        if planned <= self.policy.single_call_max_input_tokens:
            ids = {segment.id for segment in spoken if segment.id is not None}
            draft, model = self._structured(ledger, message, limits, ids)
            return to_summary(draft, transcript, engine=self.name, model=model, usage=ledger.usage)
        return self._map_reduce(ledger, transcript, spoken, limits, scale)

    # --- long transcripts ----------------------------------------------------------------

    def _map_reduce(
        self,
        ledger: _Ledger,
        transcript: Transcript,
        spoken: list[TranscriptSegment],
        limits: SummaryLimits,
        scale: float,
    ) -> Summary:
        chunks = chunk_segments(
            spoken,
            self.policy.chunk_max_input_tokens,
            lambda segment: math.ceil(estimate_tokens(segment_line(segment)) * scale),
        )
        starts = {s.id: s.start_s for s in transcript.segments if s.id is not None}
        parts: list[_Part] = []
        model = self.model
        for number, chunk in enumerate(chunks, start=1):
            chunk_transcript = transcript.model_copy(update={"segments": chunk})
            chunk_limits = self._limits(chunk_transcript)
            message = transcript_message(chunk, chunk_limits, part=number, parts=len(chunks))
            draft, model = self._structured(
                ledger, message, chunk_limits, {s.id for s in chunk if s.id is not None}
            )
            parts.append(_Part(draft, chunk[0].start_s, chunk[-1].end_s))
        while len(parts) > 1:
            groups = self._reduce_groups(parts, starts, scale)
            merged: list[_Part] = []
            for group in groups:
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                blocks = [part_block(p.draft, p.start_s, p.end_s, starts) for p in group]
                allowed = set().union(*(p.draft.cited_ids() for p in group))
                draft, model = self._structured(
                    ledger, reduce_message(blocks, limits), limits, allowed
                )
                merged.append(_Part(draft, group[0].start_s, group[-1].end_s))
            parts = merged
        return to_summary(
            parts[0].draft,
            transcript,
            engine=self.name,
            model=model,
            usage=ledger.usage,
            strategy="map-reduce",
            chunks=len(chunks),
        )

    def _reduce_groups(
        self, parts: list[_Part], starts: dict[int, float], scale: float
    ) -> list[list[_Part]]:
        """Consecutive parts whose merge prompt fits the single-call budget (two at least)."""
        budget = self.policy.single_call_max_input_tokens - self._fixed_tokens
        groups: list[list[_Part]] = [[]]
        used = 0
        for part in parts:
            block = part_block(part.draft, part.start_s, part.end_s, starts)
            cost = math.ceil(estimate_tokens(block) * scale)
            if len(groups[-1]) >= 2 and used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(part)
            used += cost
        if len(groups) > 1 and len(groups[-1]) == 1:
            groups[-2].extend(groups.pop())
        return groups

    # --- one structured answer (with its one retry) ---------------------------------------

    def _structured(
        self, ledger: _Ledger, prompt: str, limits: SummaryLimits, allowed_ids: Collection[int]
    ) -> tuple[SummaryDraft, str]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        reply = self._call(ledger, messages)
        draft, problems = self._read(reply, limits, allowed_ids)
        if draft is not None and not problems:
            return draft, reply.model
        messages = [*messages, *self._feedback(reply, problems)]
        reply = self._call(ledger, messages)
        draft, problems = self._read(reply, limits, allowed_ids)
        if draft is not None and not problems:
            return draft, reply.model
        shown = "; ".join(problems[:MAX_PROBLEMS_REPORTED])
        raise SummaryError(f"Claude's summary is invalid after one retry: {shown}")

    def _read(
        self, reply: Message, limits: SummaryLimits, allowed_ids: Collection[int]
    ) -> tuple[SummaryDraft | None, list[str]]:
        calls = [b for b in reply.content if b.type == "tool_use" and b.name == TOOL_NAME]
        if not calls:
            return None, [
                f"the reply ended (stop_reason {reply.stop_reason}) without calling "
                f"the {TOOL_NAME} tool"
            ]
        draft, problems = parse_draft(calls[0].input)
        if draft is None:
            return None, problems
        return draft, summary_problems(draft, limits, allowed_ids)

    @staticmethod
    def _feedback(reply: Message, problems: Sequence[str]) -> list[dict[str, Any]]:
        """The turn that tells the model what was wrong with its reply."""
        text = problems_message(problems)
        tool_use = next((b for b in reply.content if b.type == "tool_use"), None)
        if tool_use is None:
            said = "".join(b.text for b in reply.content if b.type == "text").strip()
            return [
                {"role": "assistant", "content": said or "(빈 답변)"},
                {"role": "user", "content": text},
            ]
        return [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": tool_use.id,
                        "name": tool_use.name,
                        "input": tool_use.input,
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "is_error": True,
                        "content": text,
                    }
                ],
            },
        ]

    # --- the API -------------------------------------------------------------------------

    def _limits(self, transcript: Transcript) -> SummaryLimits:
        return SummaryLimits.for_transcript(
            transcript,
            min_chars=self.policy.min_chars,
            max_chars=self.policy.max_chars,
            language=self.policy.language,
        )

    def _count_tokens(self, ledger: _Ledger, prompt: str) -> int | None:
        """The API's count of a single-call prompt; None when it cannot be had.

        It takes a rate-limit slot like a Messages call: it is a request to the same API."""
        if self._before_request is not None:
            self._before_request()
        try:
            counted = self._client.messages.count_tokens(
                model=self.model,
                system=self._system,
                tools=cast(Any, self._tools),
                tool_choice=self._tool_choice,
                messages=[{"role": "user", "content": prompt}],
            )
        except anthropic.APIError:
            return None  # not offered (proxies, older gateways) or unreachable: estimate
        ledger.counted()
        return counted.input_tokens

    def _call(self, ledger: _Ledger, messages: list[dict[str, Any]]) -> Message:
        planned = self._fixed_tokens + sum(
            estimate_tokens(json.dumps(m["content"], ensure_ascii=False)) for m in messages
        )
        ledger.check(planned)
        if self._before_request is not None:
            self._before_request()
        try:
            reply = self._client.messages.create(
                model=self.model,
                max_tokens=self._max_tokens,
                system=self._system,
                tools=self._tools,
                tool_choice=self._tool_choice,
                messages=cast(list[MessageParam], messages),
            )
        except anthropic.APIConnectionError as exc:
            timed_out = isinstance(exc, anthropic.APITimeoutError)
            raise ERRORS.unreachable(exc, timed_out=timed_out) from exc
        except anthropic.APIStatusError as exc:
            raise ERRORS.from_status(exc.status_code, exc.message, exc.response.headers) from exc
        ledger.charge(reply)
        if reply.stop_reason == "refusal":
            raise SummaryRefused(
                "Claude declined to summarise this transcript (stop_reason refusal); "
                "asking again gives the same answer: review the video's content"
            )
        failing = _FAILING_STOP_REASONS.get(reply.stop_reason or "")
        if failing is not None:
            text, retryable = failing
            raise SummaryError(text.format(max_tokens=self._max_tokens), retryable=retryable)
        return reply

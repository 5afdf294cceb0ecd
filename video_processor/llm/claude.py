"""Claude through the `anthropic` SDK (contracts.md §5)."""

from __future__ import annotations

import anthropic

from video_processor.errors import SummaryError, SummaryTimeout
from video_processor.llm.prompt import system_prompt, user_message
from video_processor.models import Summary, Transcript

_TRANSIENT_STATUSES = frozenset({408, 409, 429})


class ClaudeSummarizer:
    """One Messages call per transcript. The SDK does not retry: Prefect tasks do."""

    name = "claude"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        max_tokens: int,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        summary_max_chars: int = 800,
    ) -> None:
        self.model = model
        self._max_tokens = max_tokens
        self._summary_max_chars = summary_max_chars
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
        )

    def summarize(self, transcript: Transcript) -> Summary:
        text = transcript.text
        if not text:
            raise SummaryError("transcript is empty: nothing to summarise")
        try:
            message = self._client.messages.create(
                model=self.model,
                max_tokens=self._max_tokens,
                system=system_prompt(self._summary_max_chars),
                messages=[{"role": "user", "content": user_message(text)}],
            )
        except anthropic.APITimeoutError as exc:
            raise SummaryTimeout(f"Claude timed out: {exc}", retryable=True) from exc
        except anthropic.APIConnectionError as exc:
            raise SummaryError(f"Claude unreachable: {exc}", retryable=True) from exc
        except anthropic.APIStatusError as exc:
            retryable = exc.status_code in _TRANSIENT_STATUSES or exc.status_code >= 500
            raise SummaryError(
                f"Claude HTTP {exc.status_code}: {exc.message}", retryable=retryable
            ) from exc
        if message.stop_reason == "max_tokens":
            raise SummaryError(
                f"summary cut off at max_tokens={self._max_tokens}; raise CLAUDE_MAX_TOKENS"
            )
        summary = "".join(block.text for block in message.content if block.type == "text").strip()
        if not summary:
            raise SummaryError(f"Claude returned no text (stop_reason={message.stop_reason})")
        return Summary(
            engine=self.name,
            model=message.model,
            text=summary,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )

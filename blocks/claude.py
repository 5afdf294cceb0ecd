"""Anthropic Claude credentials and model choice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from video_processor.config import (
    DEFAULT_CLAUDE_BASE_URL,
    DEFAULT_CLAUDE_MAX_TOKENS,
    DEFAULT_CLAUDE_MODEL,
    DEFAULT_CLAUDE_TIMEOUT_S,
)
from video_processor.llm.base import SummaryPolicy

if TYPE_CHECKING:  # the anthropic SDK is imported only where Claude is used
    from video_processor.llm.claude import ClaudeSummarizer


class ClaudeCredentials(Block):
    """API key, endpoint and model of the Claude summariser.

    Example:
        ```python
        from blocks import ClaudeCredentials
        summarizer = ClaudeCredentials.load("claude").get_summarizer(summary_max_chars=800)
        ```
    """

    _block_type_name = "Claude Credentials"
    _block_type_slug = "claude-credentials"
    _documentation_url = HttpUrl("https://docs.anthropic.com/en/api/messages")

    api_key: SecretStr = Field(title="API key", description="Sent as `x-api-key`.")
    base_url: str = Field(
        default=DEFAULT_CLAUDE_BASE_URL,
        title="Base URL",
        description="API root without `/v1/messages` (a proxy or a local fake).",
    )
    model: str = Field(default=DEFAULT_CLAUDE_MODEL, title="Model", description="Model id.")
    max_tokens: int = Field(
        default=DEFAULT_CLAUDE_MAX_TOKENS,
        ge=1,
        title="Max tokens",
        description="Output token limit per summary.",
    )
    timeout_seconds: float = Field(
        default=DEFAULT_CLAUDE_TIMEOUT_S,
        gt=0,
        title="Timeout (s)",
        description="Per-request timeout.",
    )

    def get_summarizer(
        self,
        summary_max_chars: int | None = None,
        *,
        policy: SummaryPolicy | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> ClaudeSummarizer:
        """The summariser; ``policy`` (from settings) wins over ``summary_max_chars``;
        ``before_request`` runs before each Messages call (a rate limit)."""
        from video_processor.llm.claude import ClaudeSummarizer

        return ClaudeSummarizer(
            api_key=self.api_key.get_secret_value(),
            base_url=self.base_url,
            model=self.model,
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_seconds,
            summary_max_chars=summary_max_chars,
            policy=policy,
            before_request=before_request,
        )

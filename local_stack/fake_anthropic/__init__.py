"""Fake Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

``schema`` holds the documented bodies, models, limits and error envelope, ``behaviour`` the
checks, token counts, replies and caching (``FakeAnthropic``), ``service`` the ASGI app.

Run it alone with ``python -m local_stack.fake_anthropic --port 8092`` (every scalar field
of ``AnthropicConfig`` is a flag: ``--api-key``, ``--text``, ``--base-latency-s``, ...).
"""

from __future__ import annotations

from local_stack.fake_anthropic.behaviour import (
    DEFAULT_API_KEY,
    SUMMARY_SOURCE_CHARS,
    AnthropicConfig,
    FakeAnthropic,
)
from local_stack.fake_anthropic.schema import (
    CONTEXT_WINDOW_TOKENS,
    COUNT_TOKENS_PATH,
    KNOWN_MODELS,
    MAX_REQUEST_BYTES,
    MESSAGES_PATH,
    end_of_life,
    known_model,
)
from local_stack.http_fake import DEFAULT_HOST, FakeHTTPServer, start_server

__all__ = [
    "CONTEXT_WINDOW_TOKENS",
    "COUNT_TOKENS_PATH",
    "DEFAULT_API_KEY",
    "KNOWN_MODELS",
    "MAX_REQUEST_BYTES",
    "MESSAGES_PATH",
    "SUMMARY_SOURCE_CHARS",
    "AnthropicConfig",
    "FakeAnthropic",
    "end_of_life",
    "known_model",
    "start_fake_anthropic",
]


def start_fake_anthropic(
    config: AnthropicConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeAnthropic]:
    """Serve a fake Messages API from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeAnthropic(config), host=host, port=port)

"""HTTP failures mapped onto the pipeline's error tree, once, for every HTTP client.

What is worth asking again is decided by one rule, `retryable_status`: 408 Request
Timeout, 409 Conflict, 425 Too Early, 429 Too Many Requests and every 5xx. Every other
status is a refusal that the same request meets again. A call that got no reply (a timeout,
a refused or dropped connection) is retryable too; 504 Gateway Timeout is the service's
timeout (``STT_TIMEOUT``, ``LLM_TIMEOUT``). A client adds only what its service documents
on top: a refusal hidden behind a retryable status (NCP's 429 Quota Exceeded, CLOVA
Speech's 500 STT006) is passed as a ``hint`` saying what to fix, which makes it permanent.

One layer retries: Prefect's task retries, which read ``PipelineError.retryable`` and
nothing else. The Anthropic SDK's own retries are off (``max_retries=0``) so the attempts
never multiply; its rule is this one (without 425), and its ``x-should-retry`` reply
header is honoured here as it is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from video_processor.errors import PipelineError

RETRYABLE_4XX = frozenset({408, 409, 425, 429})
GATEWAY_TIMEOUT = 504
SHOULD_RETRY_HEADER = "x-should-retry"
DETAIL_CHARS = 200
E = TypeVar("E", bound=PipelineError)


def retryable_status(status: int) -> bool:
    """Whether the same request may succeed later: 408, 409, 425, 429 and 5xx."""
    return status in RETRYABLE_4XX or status >= 500


def retryable_reply(status: int, headers: Mapping[str, str]) -> bool:
    """`retryable_status`, unless the service said otherwise in ``x-should-retry``."""
    should_retry = headers.get(SHOULD_RETRY_HEADER)
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return retryable_status(status)


def reply_detail(response: httpx.Response) -> tuple[str, str]:
    """An error reply's code (``""`` when it has none) and a short description of it.

    Read from a JSON envelope, ``{"error": {"errorCode"|"code"|"type", "message"}}`` or the
    same keys at the top level; otherwise the start of the body.
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        nested = body.get("error")
        error: dict[str, Any] = nested if isinstance(nested, dict) else body
        code = str(error.get("errorCode") or error.get("code") or error.get("result") or "")
        message = str(error.get("message") or "")
        if code or message:
            return code, f"{code or '?'} {message}".strip()
    return "", response.text[:DETAIL_CHARS]


@dataclass(frozen=True)
class HttpErrors(Generic[E]):
    """How one service's HTTP failures become pipeline errors (``error`` or ``timeout``)."""

    service: str
    error: type[E]
    timeout: type[E]

    def unreachable(self, exc: Exception, *, timed_out: bool) -> E:
        """A call without a reply; retryable."""
        if timed_out:
            return self.timeout(f"{self.service} timed out: {exc}", retryable=True)
        return self.error(f"{self.service} unreachable: {exc}", retryable=True)

    def from_status(
        self,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        *,
        hint: str | None = None,
    ) -> E:
        """An error reply; with a ``hint`` (what to fix) it is permanent whatever its status."""
        message = f"{self.service} HTTP {status}: {detail}"
        if hint is not None:
            return self.error(f"{message}; {hint}")
        if status == GATEWAY_TIMEOUT:
            return self.timeout(message, retryable=True)
        return self.error(message, retryable=retryable_reply(status, headers or {}))

    def from_response(self, response: httpx.Response, *, hint: str | None = None) -> E:
        return self.from_status(
            response.status_code, reply_detail(response)[1], response.headers, hint=hint
        )

    def request(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request; no reply at all is raised as `unreachable`."""
        try:
            return client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise self.unreachable(exc, timed_out=isinstance(exc, httpx.TimeoutException)) from exc

"""Prefect API calls that a run or a dispatch waits on, asked again after a short pause.

Prefect's API client retries a busy answer itself (408, 429, 502, 503, a dropped
connection), after 2 s, 4 s, 8 s, 16 s and 32 s. A Prefect server on SQLite answers 503
("database is locked") whenever two of its writes collide, which under a burst of uploads
is often: one run creation could then hold back every later upload for up to 30 s, and a
chunk's slot request its whole run. `briefly_retried` makes the call with the client's
own retries off and asks again after BUSY_PAUSE_SECONDS × the attempt (at most
BUSY_PAUSE_MAX_SECONDS, with jitter) for as long as the client's own retries would have
waited (BUSY_PATIENCE_SECONDS, their 2 + 4 + 8 + 16 + 32 s); then the failure goes to the
caller's own retry (a task's retries, the sensor's poll back-off). Any other answer is
the caller's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, Settings

BUSY_PATIENCE_SECONDS = 62.0
BUSY_PAUSE_SECONDS = 0.15
BUSY_PAUSE_MAX_SECONDS = 2.0
BUSY_STATUSES = frozenset({408, 429, 502, 503})  # what Prefect's client itself retries
T = TypeVar("T")
# The last settings seen, and the same with the client's retries off (a process has one
# set of settings; building the copy takes about 24 ms).
_without_retries: tuple[Settings, Settings] | None = None


def briefly_retried(call: Callable[[], T], patience_s: float = BUSY_PATIENCE_SECONDS) -> T:
    """`call()`, asked again shortly while the API is busy; see the module docstring."""
    give_up_at = time.monotonic() + patience_s
    attempt = 0
    while True:
        attempt += 1
        try:
            with _client_retries_off():
                return call()
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            pause = min(BUSY_PAUSE_SECONDS * attempt, BUSY_PAUSE_MAX_SECONDS)
            pause *= random.uniform(1.0, 1.5)
            if not is_busy(exc) or time.monotonic() + pause > give_up_at:
                raise
        time.sleep(pause)


def is_busy(exc: BaseException) -> bool:
    """A busy or unreachable API, not a refusal."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in BUSY_STATUSES
    return isinstance(exc, httpx.TransportError)


@contextmanager
def _client_retries_off() -> Iterator[None]:
    global _without_retries
    context = get_settings_context()
    cached = _without_retries
    if cached is None or cached[0] is not context.settings:
        updated = context.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: 0})
        cached = _without_retries = (context.settings, updated)
    with SettingsContext(profile=context.profile, settings=cached[1]):
        yield

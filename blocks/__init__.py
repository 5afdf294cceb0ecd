"""Prefect blocks holding the pipeline's credentials and endpoints."""

import threading
import time
from typing import TypeVar, cast

from prefect.blocks.core import Block

from blocks.backend import BackendCallback
from blocks.claude import ClaudeCredentials
from blocks.clova import ClovaCsrCredentials
from blocks.clova_speech import ClovaSpeechCredentials

B = TypeVar("B", bound=Block)
# Each `Block.load` is an API call and an event; a long-lived process (the warm worker,
# the sensor) loads a block at most this often and sees a re-bootstrapped one within it.
BLOCK_CACHE_S = 60.0
_loaded: dict[tuple[type[Block], str], tuple[float, Block | ValueError]] = {}
_lock = threading.Lock()


def load_block(block_type: type[B], name: str) -> B:
    """`Block.load` from synchronous code, typed as the block it returns, cached for
    BLOCK_CACHE_S (a missing block too: ValueError, as `Block.load` raises)."""
    key = (cast(type[Block], block_type), name)
    with _lock:
        cached = _loaded.get(key)
    if cached is None or time.monotonic() - cached[0] >= BLOCK_CACHE_S:
        try:
            outcome: Block | ValueError = cast(Block, block_type.load(name))
        except ValueError as exc:
            outcome = exc
        cached = (time.monotonic(), outcome)
        with _lock:
            _loaded[key] = cached
    if isinstance(cached[1], ValueError):
        raise cached[1]
    return cast(B, cached[1])


def forget_loaded_blocks() -> None:
    """Load every block afresh next time (after changing blocks in the same process)."""
    with _lock:
        _loaded.clear()


__all__ = [
    "BLOCK_CACHE_S",
    "BackendCallback",
    "ClaudeCredentials",
    "ClovaCsrCredentials",
    "ClovaSpeechCredentials",
    "forget_loaded_blocks",
    "load_block",
]

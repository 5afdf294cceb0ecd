"""Prefect blocks holding the pipeline's credentials and endpoints."""

from typing import TypeVar, cast

from prefect.blocks.core import Block

from blocks.backend import BackendCallback
from blocks.claude import ClaudeCredentials
from blocks.clova import ClovaCsrCredentials
from blocks.clova_speech import ClovaSpeechCredentials

B = TypeVar("B", bound=Block)


def load_block(block_type: type[B], name: str) -> B:
    """`Block.load` from synchronous code, typed as the block it returns."""
    return cast(B, block_type.load(name))


__all__ = [
    "BackendCallback",
    "ClaudeCredentials",
    "ClovaCsrCredentials",
    "ClovaSpeechCredentials",
    "load_block",
]

"""What every summary engine offers the pipeline."""

from __future__ import annotations

from typing import Protocol

from video_processor.models import Summary, Transcript


class Summarizer(Protocol):
    """Summarises a transcript in Korean."""

    name: str

    def summarize(self, transcript: Transcript) -> Summary: ...

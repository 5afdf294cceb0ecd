"""What every speech-to-text engine offers the pipeline: chunks or the whole media."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from video_processor.models import AudioChunk, Transcript, TranscriptSegment


class SpeechToText(Protocol):
    """An engine that hears the audio stage's chunks: transcribes one chunk; segments carry
    absolute times (the chunk offset added)."""

    name: str
    language: str

    def transcribe_chunk(self, audio_path: Path, chunk: AudioChunk) -> list[TranscriptSegment]: ...


@runtime_checkable
class FallbackDecoding(Protocol):
    """An engine that can decode a chunk a second, different way when the first way left
    stretches of its sound without text."""

    def fallback_transcribe_chunk(
        self, audio_path: Path, chunk: AudioChunk
    ) -> list[TranscriptSegment]: ...


@dataclass(frozen=True)
class MediaSource:
    """Where a whole-media engine gets the media: a presigned URL, a local file, or both.

    ``duration_s`` (from ffprobe or the upload's metadata) picks sync or async; unknown
    means async. ``size_bytes`` lets an oversized URL source fail before any request, and
    ``extension`` (the upload's, lower case) a container the service does not take.
    """

    url: str | None = None
    path: Path | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    extension: str | None = None

    def __post_init__(self) -> None:
        if self.url is None and self.path is None:
            raise ValueError("a MediaSource needs a url or a path")


@runtime_checkable
class WholeMedia(Protocol):
    """An engine that hears the upload itself, in one job, instead of the audio stage's
    chunks; with ``send_url`` it fetches the media by presigned URL."""

    name: str
    language: str

    @property
    def send_url(self) -> bool: ...

    def transcribe_media(self, source: MediaSource) -> Transcript: ...


# Every STT engine is one of the two: the flow asks which (``isinstance(engine, WholeMedia)``)
# and the plan knows it before any engine is built (``AudioOptions.chunked``).
SttEngine = SpeechToText | WholeMedia

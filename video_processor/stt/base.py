"""What every speech-to-text engine offers the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from video_processor.models import AudioChunk, TranscriptSegment


class SpeechToText(Protocol):
    """Transcribes one audio chunk; segments carry absolute times (chunk offset added)."""

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

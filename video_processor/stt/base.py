"""What every speech-to-text engine offers the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from video_processor.models import AudioChunk, TranscriptSegment


class SpeechToText(Protocol):
    """Transcribes one audio chunk; segments carry absolute times (chunk offset added)."""

    name: str
    language: str

    def transcribe_chunk(self, audio_path: Path, chunk: AudioChunk) -> list[TranscriptSegment]: ...

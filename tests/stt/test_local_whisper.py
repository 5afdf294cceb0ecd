"""The offline Whisper engine: model assembly from the two wheels, and real transcription."""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local_stack.sample_video import make_korean_speech_video
from video_processor.errors import ErrorCode, SpeechToTextError
from video_processor.models import AudioChunk
from video_processor.stt import local_whisper
from video_processor.stt.local_whisper import (
    MODEL_FILE,
    VERIFIED_MARKER_FILE,
    WHISPER_MODEL_SHA256,
    LocalWhisperSpeechToText,
    default_model_dir,
    ensure_whisper_model,
    load_whisper_model,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
    reason="needs the espeak-ng and ffmpeg binaries",
)

# One short sentence that the Whisper base model reliably renders in Hangul
# (espeak-ng's Korean voice is too poor for longer text).
REPO_ROOT = Path(__file__).resolve().parents[2]
SPOKEN_TEXT = "마케팅팀은 사용자 의견을 모아 주세요."
CHUNK_START_S = 42.0
HANGUL = re.compile("[가-힣]")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_whisper_model(tmp_path_factory.mktemp("whisper") / "base")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    video = make_korean_speech_video(folder / "speech.mp4", SPOKEN_TEXT)
    wav = folder / "speech.wav"
    extract = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vn", "-ac", "1", "-ar", "16000"]
    subprocess.run([*extract, str(wav)], check=True)
    return wav


def test_assembled_model_matches_the_recorded_sha_and_is_not_rebuilt(model_dir: Path):
    model = model_dir / MODEL_FILE
    assert _sha256(model) == WHISPER_MODEL_SHA256
    assert {"config.json", "tokenizer.json", "vocabulary.txt", VERIFIED_MARKER_FILE} <= {
        path.name for path in model_dir.iterdir()
    }
    before = model.stat()
    ensure_whisper_model(model_dir)
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_corrupted_model_file_is_detected_and_rebuilt(tmp_path: Path):
    model = ensure_whisper_model(tmp_path) / MODEL_FILE
    with model.open("r+b") as handle:
        handle.seek(1_000_000)
        handle.write(b"\xff\xfe\xfd")
    assert _sha256(model) != WHISPER_MODEL_SHA256
    ensure_whisper_model(tmp_path)
    assert _sha256(model) == WHISPER_MODEL_SHA256


def test_two_processes_assembling_at_once_leave_one_good_model(tmp_path: Path):
    assemble = (
        "import sys; from pathlib import Path; "
        "from video_processor.stt.local_whisper import ensure_whisper_model; "
        "ensure_whisper_model(Path(sys.argv[1]))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", assemble, str(tmp_path)], cwd=REPO_ROOT)
        for _ in range(2)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    assert _sha256(tmp_path / MODEL_FILE) == WHISPER_MODEL_SHA256
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".model.bin.")]


def test_parts_that_do_not_join_into_the_recorded_model_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    for part in parts:
        part.write_bytes(b"not a whisper model")
    monkeypatch.setattr(local_whisper, "_model_parts", lambda: parts)
    model_dir = tmp_path / "model"
    with pytest.raises(SpeechToTextError, match="sha256") as caught:
        ensure_whisper_model(model_dir)
    assert caught.value.code is ErrorCode.STT_BAD_RESPONSE
    assert not (model_dir / MODEL_FILE).exists()
    assert not [path for path in model_dir.iterdir() if path.name.startswith(".model.bin.")]


def test_transcribes_korean_speech_with_absolute_times(model_dir: Path, speech_wav: Path):
    engine = LocalWhisperSpeechToText(language="ko", model_dir=model_dir)
    chunk = AudioChunk(
        index=3, key="work/u/j/v/chunk-0003.flac", start_s=CHUNK_START_S, duration_s=3.5,
        size_bytes=speech_wav.stat().st_size,
    )  # fmt: skip
    segments = engine.transcribe_chunk(speech_wav, chunk)
    assert segments
    assert HANGUL.search(" ".join(segment.text for segment in segments))
    for segment in segments:
        assert segment.text == segment.text.strip() != ""
        assert CHUNK_START_S <= segment.start_s <= segment.end_s
        assert segment.end_s <= CHUNK_START_S + chunk.duration_s


class _ScriptedModel:
    """Stands in for WhisperModel: returns fixed segments and records the options."""

    def __init__(self, *segments: tuple[float, float, str], language: str = "ko") -> None:
        self.segments = [
            SimpleNamespace(
                start=s, end=e, text=t, avg_logprob=-0.5, compression_ratio=1.2, no_speech_prob=0.1
            )
            for s, e, t in segments
        ]
        self.language = language
        self.options: dict[str, Any] = {}

    def transcribe(self, audio: str, **options: Any) -> tuple[Any, Any]:
        self.options = options
        return iter(self.segments), SimpleNamespace(language=self.language)


def test_segments_are_cleaned_and_kept_inside_the_chunk(monkeypatch: pytest.MonkeyPatch):
    model = _ScriptedModel(
        (0.0, 2.0, " 첫 문장 "), (2.0, 2.5, "   "), (2.5, 9.0, "끝이 넘친 문장"), (9.0, 12.0, "오.")
    )
    monkeypatch.setattr(local_whisper, "load_whisper_model", lambda folder, threads: model)
    chunk = AudioChunk(index=1, key="k", start_s=60.0, duration_s=5.0, size_bytes=1)
    segments = LocalWhisperSpeechToText(model_dir=Path("unused")).transcribe_chunk(
        Path("a.flac"), chunk
    )
    assert [(s.start_s, s.end_s, s.text) for s in segments] == [
        (60.0, 62.0, "첫 문장"),
        (62.5, 65.0, "끝이 넘친 문장"),
    ]
    assert model.options["language"] == "ko"
    assert model.options["vad_filter"] is True
    assert model.options["condition_on_previous_text"] is False
    # Whisper's skip of "silent" windows dropped whole chunks of real speech: it is off.
    assert model.options["no_speech_threshold"] is None
    assert segments[0].confidence == round(math.exp(-0.5), 3)
    assert (segments[0].compression_ratio, segments[0].no_speech_prob) == (1.2, 0.1)


def test_auto_language_lets_whisper_detect_and_segments_carry_it(
    monkeypatch: pytest.MonkeyPatch,
):
    model = _ScriptedModel((0.0, 2.0, "hello there"), language="en")
    monkeypatch.setattr(local_whisper, "load_whisper_model", lambda folder, threads: model)
    chunk = AudioChunk(index=0, key="k", start_s=0.0, duration_s=5.0, size_bytes=1)
    engine = LocalWhisperSpeechToText(language="auto", model_dir=Path("unused"))
    segments = engine.transcribe_chunk(Path("a.wav"), chunk)
    assert model.options["language"] is None
    assert [s.language for s in segments] == ["en"]


def test_the_fallback_decode_runs_without_vad(monkeypatch: pytest.MonkeyPatch):
    model = _ScriptedModel((0.0, 2.0, "소리"))
    monkeypatch.setattr(local_whisper, "load_whisper_model", lambda folder, threads: model)
    chunk = AudioChunk(index=0, key="k", start_s=0.0, duration_s=5.0, size_bytes=1)
    engine = LocalWhisperSpeechToText(model_dir=Path("unused"))
    assert [s.text for s in engine.fallback_transcribe_chunk(Path("a.wav"), chunk)] == ["소리"]
    assert model.options["vad_filter"] is False


def test_model_is_loaded_once_per_process(model_dir: Path):
    assert load_whisper_model(model_dir, 2) is load_whisper_model(model_dir, 2)


def test_undecodable_audio_is_a_speech_to_text_error(model_dir: Path, tmp_path: Path):
    garbage = tmp_path / "chunk.flac"
    garbage.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    chunk = AudioChunk(index=0, key="k", start_s=0.0, duration_s=1.0, size_bytes=2052)
    with pytest.raises(SpeechToTextError) as caught:
        LocalWhisperSpeechToText(model_dir=model_dir).transcribe_chunk(garbage, chunk)
    assert caught.value.__cause__ is not None


def test_default_model_dir_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_model_dir() == tmp_path / "ai-video-processor" / "whisper-base"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_model_dir() == Path.home() / ".cache" / "ai-video-processor" / "whisper-base"


def test_a_chunk_that_loops_is_decoded_again_with_a_repetition_penalty(
    monkeypatch: pytest.MonkeyPatch,
):
    looping = _ScriptedModel((0.0, 9.0, "오, 오, 오, 오, 오"))
    looping.segments[0].compression_ratio = 3.9
    retried = _ScriptedModel((0.0, 9.0, "오늘 날씨가 좋습니다"))
    calls: list[float] = []

    class _Model:
        def transcribe(self, audio: str, **options: Any) -> tuple[Any, Any]:
            calls.append(options["repetition_penalty"])
            model = looping if options["repetition_penalty"] == 1.0 else retried
            return model.transcribe(audio, **options)

    monkeypatch.setattr(local_whisper, "load_whisper_model", lambda folder, threads: _Model())
    chunk = AudioChunk(index=0, key="k", start_s=0.0, duration_s=10.0, size_bytes=1)
    segments = LocalWhisperSpeechToText(model_dir=Path("unused")).transcribe_chunk(
        Path("a.wav"), chunk
    )
    assert calls == [1.0, local_whisper.LOOP_RETRY_REPETITION_PENALTY]
    assert [s.text for s in segments] == ["오늘 날씨가 좋습니다"]

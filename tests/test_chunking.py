"""Chunk planning: silences, cuts, sound ranges and noise, on audio FFmpeg decodes."""

import itertools
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from local_stack.sample_video import make_tone_video
from video_processor import chunking, ffmpeg


def _write_wav(path: Path, expression: str, seconds: float) -> Path:
    """A 16 kHz mono WAV upload of the ``aevalsrc`` expression (exact sample positions)."""
    source = f"aevalsrc='{expression}':s={ffmpeg.SAMPLE_RATE_HZ}:d={seconds}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, str(path)],
        check=True,
        timeout=60,
    )
    return path


# 7.5 s of tone, then 1.5 s of silence, every 9 s: silences at [7.5, 9), [16.5, 18), …
BURSTS = "if(lt(mod(t,9),7.5),0.5*sin(2*PI*300*t),0)"
TONE = "0.5*sin(2*PI*300*t)"


def _extract(upload: Path, out: Path, chunk_seconds: float) -> list[chunking.ExtractedChunk]:
    out.mkdir()
    return chunking.extract_audio_chunks(
        upload, out, chain="highpass=f=200", chunk_seconds=chunk_seconds, timeout_s=60
    )


def _assert_contiguous(chunks: list[chunking.ExtractedChunk], seconds: float, limit: float) -> None:
    assert chunks[0].start_s == 0
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.start_s == pytest.approx(previous.start_s + previous.duration_s, abs=1e-9)
    assert sum(chunk.duration_s for chunk in chunks) == pytest.approx(seconds, abs=1e-3)
    for chunk in chunks:
        assert chunk.duration_s <= limit
        with wave.open(str(chunk.path), "rb") as wav:
            assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 16_000, 2)
            assert wav.getnframes() == round(chunk.duration_s * ffmpeg.SAMPLE_RATE_HZ)


def test_chunks_are_cut_in_the_latest_silence_that_fits(tmp_path: Path):
    upload = _write_wav(tmp_path / "bursts.wav", BURSTS, seconds=60)
    chunks = _extract(upload, tmp_path / "chunks", chunk_seconds=20)
    _assert_contiguous(chunks, 60, limit=20)
    # Windows (10, 20], (27.25, 37.25], (45.25, 55.25]: the latest silence's midpoint.
    assert [chunk.start_s for chunk in chunks] == pytest.approx([0, 17.25, 35.25, 53.25], abs=0.02)
    assert [chunk.cut_at_silence for chunk in chunks] == [True, True, True, False]
    for chunk in chunks[:-1]:
        end = chunk.start_s + chunk.duration_s
        assert 7.5 < end % 9 < 9  # inside a silence
    assert list(tmp_path.joinpath("chunks").glob("*.pcm")) == []


def test_without_silences_chunks_are_cut_hard_at_the_limit(tmp_path: Path):
    upload = _write_wav(tmp_path / "tone.wav", TONE, seconds=70)
    chunks = _extract(upload, tmp_path / "chunks", chunk_seconds=55)
    _assert_contiguous(chunks, 70, limit=55)
    assert [chunk.duration_s for chunk in chunks] == [55, pytest.approx(15, abs=1e-3)]
    assert not any(chunk.cut_at_silence for chunk in chunks)
    # CLOVA CSR: at most 60 s and 3 MB per request.
    assert chunks[0].path.stat().st_size < 3_000_000
    assert ffmpeg.probe_media(chunks[0].path).duration_s == pytest.approx(55, abs=0.01)


def test_a_video_upload_is_cut_as_requested(tmp_path: Path):
    video = make_tone_video(tmp_path / "long.mp4", seconds=25)
    chunks = _extract(video, tmp_path / "chunks", chunk_seconds=10)
    assert [chunk.start_s for chunk in chunks] == [0, 10, 20]
    assert sum(chunk.duration_s for chunk in chunks) == pytest.approx(25, abs=0.1)


def test_small_read_blocks_give_the_same_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    upload = _write_wav(tmp_path / "bursts.wav", BURSTS, seconds=40)
    expected = _extract(upload, tmp_path / "large", chunk_seconds=20)
    monkeypatch.setattr(chunking, "SCAN_BLOCK_BYTES", chunking.FRAME_SAMPLES * 2 * 7)
    monkeypatch.setattr(chunking, "COPY_BLOCK_BYTES", 1000)
    streamed = _extract(upload, tmp_path / "small", chunk_seconds=20)
    assert [(c.start_s, c.duration_s) for c in streamed] == [
        (c.start_s, c.duration_s) for c in expected
    ]
    for small, large in zip(streamed, expected, strict=True):
        assert small.path.read_bytes() == large.path.read_bytes()


def _pcm(path: Path, *pieces: tuple[float, float]) -> Path:
    """Raw 16-bit PCM of (seconds, amplitude) pieces: a 300 Hz tone, or silence at 0."""
    parts = []
    for seconds, amplitude in pieces:
        t = np.arange(round(seconds * ffmpeg.SAMPLE_RATE_HZ)) / ffmpeg.SAMPLE_RATE_HZ
        parts.append(amplitude * 32767 * np.sin(2 * np.pi * 300 * t))
    path.write_bytes(np.concatenate(parts).astype("<i2").tobytes())
    return path


def test_silences_are_quiet_runs_of_at_least_the_minimum_length(tmp_path: Path):
    quiet = 10 ** (chunking.SILENCE_NOISE_DB / 20) / 2  # under the threshold, not zero
    pcm = _pcm(tmp_path / "a.pcm", (1, 0.5), (0.2, 0), (1, 0.5), (0.5, quiet), (1, 0.5), (0.4, 0))
    total = pcm.stat().st_size // 2
    silences = chunking.find_silences(pcm, total)
    assert [(start / 16_000, end / 16_000) for start, end in silences] == [
        pytest.approx((2.2, 2.7), abs=0.011),
        pytest.approx((3.7, 4.1), abs=0.011),
    ]
    assert silences[-1][1] == total  # a silence running to the end ends there


def test_plan_keeps_the_last_chunk_from_being_a_sliver():
    second = ffmpeg.SAMPLE_RATE_HZ
    plan = chunking.plan_chunks(
        round(40.5 * second), [], max_samples=20 * second, min_samples=10 * second, min_tail=second
    )
    assert [(p.start / second, p.end / second) for p in plan] == [(0, 20), (20, 39.5), (39.5, 40.5)]


def test_plan_cuts_inside_a_silence_straddling_the_window_edge():
    second = ffmpeg.SAMPLE_RATE_HZ
    plan = chunking.plan_chunks(
        60 * second,
        [(5 * second, 8 * second), (19 * second, 30 * second)],
        max_samples=20 * second,
        min_samples=10 * second,
        min_tail=second,
    )
    # The midpoint (24.5 s) lies past the window's end: the cut is at its end, still silent.
    assert plan[0].end == 20 * second and plan[0].at_silence
    assert plan[1].start == 20 * second


def test_sound_ranges_are_the_span_minus_its_silences():
    rate = ffmpeg.SAMPLE_RATE_HZ
    silences = [(0, rate), (3 * rate, 4 * rate), (9 * rate, 12 * rate)]
    assert chunking.sound_ranges(2 * rate, 10 * rate, silences) == ((2.0, 3.0), (4.0, 9.0))
    assert chunking.sound_ranges(0, rate, silences) == ()


def test_broadband_noise_is_told_from_speech_pauses_tones_and_hum():
    rate = ffmpeg.SAMPLE_RATE_HZ
    rng = np.random.default_rng(7)
    t = np.arange(10 * rate) / rate
    white = rng.standard_normal(len(t)) * 3000
    tone = 8000 * np.sin(2 * np.pi * 220 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    hum = 3000 * np.sin(2 * np.pi * 50 * t) + 1500 * np.sin(2 * np.pi * 100 * t)
    quiet = rng.standard_normal(len(t)) * 20  # a pause's floor, far under -38 dBFS
    assert chunking.is_broadband_noise(white.astype(np.int16))
    assert chunking.is_broadband_noise((white + tone).astype(np.int16))
    for signal in (tone, hum, quiet, np.zeros(len(t))):
        assert not chunking.is_broadband_noise(signal.astype(np.int16))

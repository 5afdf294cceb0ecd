"""Cutting the decoded audio into STT-sized chunks at pauses between sentences.

One FFmpeg pass decodes the upload to raw PCM (`ffmpeg.decode_to_pcm`); a numpy scan finds
its silences, the plan cuts each chunk in the latest one that fits, and each chunk is
written as a WAV file with where it has sound and whether its floor is broadband noise.
"""

from __future__ import annotations

import bisect
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from video_processor.errors import AudioError
from video_processor.ffmpeg import SAMPLE_BYTES, SAMPLE_RATE_HZ, decode_to_pcm

# A pause between sentences: every sample under -35 dBFS for 0.3 s, checked in 10 ms frames
# (espeak-ng's sentence pauses are ~0.4 s; stops inside words are much shorter).
# Chunks are cut in such pauses, so that no word is split between two STT requests.
SILENCE_NOISE_DB = -35
SILENCE_MIN_S = 0.3
SILENCE_PEAK = round(32_768 * 10 ** (SILENCE_NOISE_DB / 20))
FRAME_SAMPLES = SAMPLE_RATE_HZ // 100
# Never leave a last chunk shorter than this (CLOVA refuses too short audio: STT007).
MIN_TAIL_S = 1.0
SCAN_BLOCK_BYTES = FRAME_SAMPLES * SAMPLE_BYTES * 4096
COPY_BLOCK_BYTES = 1 << 20
PCM_NAME = "audio.pcm"

# Broadband noise: the quietest fifth of a chunk's 32 ms frames (the floor under speech)
# is loud and spectrally flat over 250-3500 Hz (the band every audio profile keeps), as
# white or pink noise is; a pause in clean speech is near silent, and a tone, hum or music
# floor is far from flat. Measured (after the `denoise` chain and without it): white and pink
# noise at 0-10 dB SNR under speech, floors of -24 to -35 dBFS, flatness 0.57; clean
# speech floors -45 dBFS (espeak-ng in AAC) to -74 dBFS; synthetic music flatness 0.0.
NOISE_FRAME_SAMPLES = 512
NOISE_FLOOR_QUANTILE = 0.2
NOISE_FLOOR_MIN_DBFS = -38.0
NOISE_MIN_FLATNESS = 0.3
NOISE_BAND_HZ = (250.0, 3500.0)


@dataclass(frozen=True)
class ExtractedChunk:
    path: Path
    start_s: float
    duration_s: float
    cut_at_silence: bool
    """Whether the chunk ends in a detected silence (False at the limit and at the end)."""
    sound: tuple[tuple[float, float], ...] = ()
    """Where the pause scan heard sound, in seconds from the start of the audio."""
    noisy: bool = False
    """Whether the chunk's floor is broadband noise (``is_broadband_noise``)."""


@dataclass(frozen=True)
class ChunkPlan:
    """A span of the audio in samples, ``[start, end)``."""

    start: int
    end: int
    at_silence: bool


def extract_audio_chunks(
    video: Path,
    out_dir: Path,
    *,
    chain: str,
    chunk_seconds: float,
    timeout_s: float,
    ffmpeg: str = "ffmpeg",
) -> list[ExtractedChunk]:
    """One FFmpeg pass, then cuts at silences: mono 16 kHz WAV chunks of ≤ ``chunk_seconds``.

    FFmpeg decodes, runs ``chain`` and converts, writing raw PCM to ``out_dir``. Silences
    are found on that PCM by a numpy scan (``silencedetect`` in the FFmpeg pass added ~12 %
    to an unfiltered decode; scan and copy take ~30 ms per 10 min of audio), then each
    chunk ends in the latest silence that fits, or at the limit if none does. Positions are
    sample counts, so offsets and durations are exact.
    """
    pcm = out_dir / PCM_NAME
    decode_to_pcm(video, pcm, chain=chain, timeout_s=timeout_s, ffmpeg=ffmpeg)
    total = pcm.stat().st_size // SAMPLE_BYTES
    if total == 0:
        raise AudioError("audio extraction produced no audio")
    max_samples = round(chunk_seconds * SAMPLE_RATE_HZ)
    min_samples = max_samples // 2
    silences = find_silences(pcm, total)
    plan = plan_chunks(
        total,
        silences,
        max_samples=max_samples,
        min_samples=min_samples,
        min_tail=min(round(MIN_TAIL_S * SAMPLE_RATE_HZ), min_samples),
    )
    chunks = _write_chunks(pcm, out_dir, plan, silences)
    pcm.unlink()
    return chunks


def find_silences(pcm: Path, total: int) -> list[tuple[int, int]]:
    """Silences of ``pcm`` as ``[start, end)`` samples, like ``silencedetect`` at 10 ms.

    A silence is a run of at least ``SILENCE_MIN_S`` of 10 ms frames whose every sample
    stays under ``SILENCE_NOISE_DB``. Read a block at a time: a long video's PCM is large.
    """
    quiet: list[npt.NDArray[np.bool_]] = []
    with pcm.open("rb") as source:
        while block := source.read(SCAN_BLOCK_BYTES):
            samples = np.frombuffer(block, dtype="<i2")
            if len(samples) % FRAME_SAMPLES:  # only the last block
                samples = np.pad(samples, (0, -len(samples) % FRAME_SAMPLES))
            frames = samples.reshape(-1, FRAME_SAMPLES)
            quiet.append((frames.max(axis=1) < SILENCE_PEAK) & (frames.min(axis=1) > -SILENCE_PEAK))
    flags = np.concatenate([[False], *quiet, [False]]).astype(np.int8)
    edges = np.diff(flags)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    min_frames = round(SILENCE_MIN_S * SAMPLE_RATE_HZ / FRAME_SAMPLES)
    return [
        (int(start) * FRAME_SAMPLES, min(int(end) * FRAME_SAMPLES, total))
        for start, end in zip(starts, ends, strict=True)
        if end - start >= min_frames
    ]


def plan_chunks(
    total: int,
    silences: Sequence[tuple[int, int]],
    *,
    max_samples: int,
    min_samples: int,
    min_tail: int,
) -> list[ChunkPlan]:
    """Contiguous chunks of at most ``max_samples`` covering ``total`` samples.

    Each cut is the latest silence midpoint in ``(start + min_samples, start + max_samples]``
    (clamped into the window when a silence straddles its edge); without one the cut is
    hard, at the window's end. The window stops ``min_tail`` before the end of the audio,
    so that the last chunk is not a sliver CLOVA would refuse as too short.
    """
    starts = [begin for begin, _ in silences]
    plans: list[ChunkPlan] = []
    start = 0
    while total - start > max_samples:
        low = start + min_samples + 1
        high = min(start + max_samples, total - min_tail)
        cut = _silent_point(silences, starts, low, high)
        end = high if cut is None else cut
        plans.append(ChunkPlan(start, end, at_silence=cut is not None))
        start = end
    plans.append(ChunkPlan(start, total, at_silence=False))
    return plans


def _silent_point(
    silences: Sequence[tuple[int, int]], starts: list[int], low: int, high: int
) -> int | None:
    """The midpoint of the latest silence overlapping ``[low, high]``, clamped into both."""
    index = bisect.bisect_right(starts, high) - 1
    if index < 0:
        return None
    begin, end = silences[index]
    first, last = max(begin, low), min(end, high)
    if first > last:
        return None
    return min(max((begin + end) // 2, first), last)


def sound_ranges(
    start: int, end: int, silences: Sequence[tuple[int, int]]
) -> tuple[tuple[float, float], ...]:
    """``[start, end)`` minus the silences, in seconds: where there is something to hear."""
    ranges = []
    cursor = start
    for begin, stop in silences:
        if stop <= cursor:
            continue
        if begin >= end:
            break
        if begin > cursor:
            ranges.append((cursor / SAMPLE_RATE_HZ, begin / SAMPLE_RATE_HZ))
        cursor = max(cursor, stop)
    if cursor < end:
        ranges.append((cursor / SAMPLE_RATE_HZ, end / SAMPLE_RATE_HZ))
    return tuple(ranges)


def is_broadband_noise(samples: npt.NDArray[np.int16]) -> bool:
    """Whether the quiet part of the audio (its floor) is loud, flat-spectrum noise."""
    count = len(samples) // NOISE_FRAME_SAMPLES
    if count == 0:
        return False
    frames = samples[: count * NOISE_FRAME_SAMPLES].reshape(count, -1).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    floor = frames[rms <= np.quantile(rms, NOISE_FLOOR_QUANTILE)]
    floor_rms = float(np.sqrt(np.mean(floor**2)))
    if floor_rms <= 0 or 20 * np.log10(floor_rms / 32_768) < NOISE_FLOOR_MIN_DBFS:
        return False
    spectrum = np.abs(np.fft.rfft(floor * np.hanning(NOISE_FRAME_SAMPLES), axis=1)) ** 2
    hz = np.fft.rfftfreq(NOISE_FRAME_SAMPLES, 1 / SAMPLE_RATE_HZ)
    band = spectrum[:, (hz >= NOISE_BAND_HZ[0]) & (hz <= NOISE_BAND_HZ[1])] + 1e-12
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    return float(np.median(flatness)) >= NOISE_MIN_FLATNESS


def _write_chunks(
    pcm: Path, out_dir: Path, plans: list[ChunkPlan], silences: Sequence[tuple[int, int]]
) -> list[ExtractedChunk]:
    """Copy each planned span of ``pcm`` into a WAV file, a block at a time."""
    chunks = []
    with pcm.open("rb") as source:
        for index, plan in enumerate(plans):
            path = out_dir / f"chunk-{index:05d}.wav"
            # The first quarter of every 1 MiB block (8 of each 33 s) shows the noise floor.
            sampled: list[npt.NDArray[np.int16]] = []
            with wave.open(str(path), "wb") as chunk:
                chunk.setnchannels(1)
                chunk.setsampwidth(SAMPLE_BYTES)
                chunk.setframerate(SAMPLE_RATE_HZ)
                length = (plan.end - plan.start) * SAMPLE_BYTES
                for offset in range(0, length, COPY_BLOCK_BYTES):
                    block = source.read(min(COPY_BLOCK_BYTES, length - offset))
                    chunk.writeframesraw(block)
                    sampled.append(np.frombuffer(block[: len(block) // 8 * 2], dtype="<i2"))
            chunks.append(
                ExtractedChunk(
                    path=path,
                    start_s=plan.start / SAMPLE_RATE_HZ,
                    duration_s=(plan.end - plan.start) / SAMPLE_RATE_HZ,
                    cut_at_silence=plan.at_silence,
                    sound=sound_ranges(plan.start, plan.end, silences),
                    noisy=is_broadband_noise(np.concatenate(sampled)),
                )
            )
    return chunks

"""Accuracy of the audio profiles on real noisy speech: ``make bench-accuracy``.

Speech: the English recordings with reference transcripts of Debian's
``pocketsphinx-testdata`` (``librivox/``: 5 LibriVox utterances, public domain, 24.7 s;
``cards/``: 5 utterances, 9.6 s), joined with 0.4 s of silence into one 16 kHz clip.

Conditions: the clean clip, and the clip mixed with white, pink and 50 Hz hum (with 100
and 150 Hz harmonics) noise at 0, 5 and 10 dB SNR. Noise is generated with numpy from
fixed seeds; SNR is the ratio of the clean clip's mean power (pauses included) to the
noise's. A mix whose peak would clip is scaled down as a whole (SNR unchanged).

Each condition goes through each audio profile exactly as the pipeline runs it:
``video_processor.chunking.extract_audio_chunks`` with ``filter_chain(profile)`` (the real
FFmpeg, mono 16 kHz WAV chunks of 55 s), then the ``local`` engine configured for English
(``LocalWhisperSpeechToText(language="en")``, Whisper base int8, greedy, VAD on).

Scoring: jiwer WER and CER after a small normaliser (``normalise``): lower-case; the
references' ``<s>``/``</s>``/``(id)`` markup and ``[n]`` tokens dropped; punctuation
removed (apostrophes inside words kept); ``mr``→``mister`` and the numbers 0–10 written
as words, because the references spell them out and Whisper writes "Mr." and digits.

Output: a table on stdout and ``bench/results/accuracy.json`` (per condition and profile,
the mean over all conditions and over the noisy ones, wins per profile, the recommended
default: the lowest mean WER, ties going to the simpler profile).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import numpy.typing as npt

from video_processor.chunking import extract_audio_chunks
from video_processor.config import AudioProfile
from video_processor.ffmpeg import SAMPLE_RATE_HZ, filter_chain
from video_processor.models import AudioChunk

Signal = npt.NDArray[np.float64]

DATA_ROOT = Path("/usr/share/pocketsphinx/test/data")
CORPORA = {
    "librivox": ("librivox", "transcription"),
    "cards": ("cards", "cards.transcription"),
}
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "accuracy.json"
NOISES = ("white", "pink", "hum")
SNRS_DB = (0, 5, 10)
NOISE_SEEDS = {"white": 1101, "pink": 2202, "hum": 3303}
HUM_HZ = 50.0
HUM_HARMONICS = ((1, 1.0), (2, 0.5), (3, 0.25))
GAP_SECONDS = 0.4
CHUNK_SECONDS = 55.0
FFMPEG_TIMEOUT_S = 120.0
INT16_MAX = 32767
CLIP_PEAK = 0.99
# Simpler first: a tie in mean WER goes to the profile with less processing.
PROFILE_ORDER = (AudioProfile.NONE, AudioProfile.HIGHPASS, AudioProfile.DENOISE)
NUMBER_WORDS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
}
WORD_ALIASES = {"mr": "mister", "mrs": "missus", **NUMBER_WORDS}
_MARKUP = re.compile(r"</?s>|\([^)]*\)|\[[^\]]*\]")
_PUNCTUATION = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


@dataclass(frozen=True)
class Utterance:
    corpus: str
    wav: Path
    reference: str


def normalise(text: str) -> str:
    """Lower-case, drop markup and punctuation, spell out ``mr`` and numbers 0–10."""
    text = _MARKUP.sub(" ", text.lower())
    text = _PUNCTUATION.sub(" ", text)
    return " ".join(WORD_ALIASES.get(word, word) for word in text.split())


def load_corpus(root: Path = DATA_ROOT) -> list[Utterance]:
    """Every utterance of the two corpora, in file order, with its reference."""
    utterances = []
    for corpus, (folder, transcription) in CORPORA.items():
        for line in (root / folder / transcription).read_text().splitlines():
            match = re.search(r"\(([^)]+)\)\s*$", line)
            if not match:
                continue
            wav = root / folder / f"{match[1]}.wav"
            utterances.append(Utterance(corpus, wav, normalise(line)))
    if not utterances:
        raise SystemExit(f"no utterances under {root}: install pocketsphinx-testdata")
    return utterances


def read_wav(path: Path) -> Signal:
    """A 16 kHz mono 16-bit WAV as floats in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE_HZ, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit")
        frames = wav.readframes(wav.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / INT16_MAX


def write_wav(path: Path, signal: Signal) -> None:
    samples = np.clip(np.round(signal * INT16_MAX), -INT16_MAX, INT16_MAX).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE_HZ)
        wav.writeframes(samples.tobytes())


def join(signals: Sequence[Signal], gap_s: float = GAP_SECONDS) -> Signal:
    gap = np.zeros(round(gap_s * SAMPLE_RATE_HZ))
    parts: list[Signal] = []
    for signal in signals:
        parts.extend([signal, gap])
    return np.concatenate(parts[:-1]) if parts else np.zeros(0)


def make_noise(kind: str, samples: int, seed: int) -> Signal:
    """Unit-power white, pink (1/f power) or 50 Hz hum noise, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    if kind == "white":
        noise = rng.standard_normal(samples)
    elif kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        frequencies = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE_HZ)
        frequencies[0] = frequencies[1] if samples > 1 else 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=samples)
    elif kind == "hum":
        t = np.arange(samples) / SAMPLE_RATE_HZ
        phases = rng.uniform(0, 2 * np.pi, len(HUM_HARMONICS))
        noise = sum(
            (
                amplitude * np.sin(2 * np.pi * HUM_HZ * harmonic * t + phase)
                for (harmonic, amplitude), phase in zip(HUM_HARMONICS, phases, strict=True)
            ),
            np.zeros(samples),
        )
    else:
        raise ValueError(f"unknown noise {kind!r}")
    noise = noise - noise.mean()
    return np.asarray(noise / np.sqrt(np.mean(noise**2)), dtype=np.float64)


def power(signal: Signal) -> float:
    return float(np.mean(signal**2))


def mix_at_snr(speech: Signal, noise: Signal, snr_db: float) -> Signal:
    """``speech`` plus ``noise`` scaled to ``snr_db``; scaled down as a whole if it would clip."""
    scale = np.sqrt(power(speech) / (power(noise) * 10 ** (snr_db / 10)))
    mixed = speech + scale * noise[: len(speech)]
    peak = float(np.max(np.abs(mixed))) if len(mixed) else 0.0
    if peak > CLIP_PEAK:
        mixed = mixed * (CLIP_PEAK / peak)
    return np.asarray(mixed, dtype=np.float64)


def conditions(
    speech: Signal, noises: Sequence[str] = NOISES, snrs: Sequence[int] = SNRS_DB
) -> dict[str, Signal]:
    """``clean`` plus ``<noise>@<snr>dB`` for each noise and SNR."""
    result = {"clean": speech}
    for kind in noises:
        noise = make_noise(kind, len(speech), NOISE_SEEDS[kind])
        for snr in snrs:
            result[f"{kind}@{snr}dB"] = mix_at_snr(speech, noise, snr)
    return result


def transcribe(wav: Path, profile: AudioProfile, work: Path, engine: Any) -> str:
    """The pipeline's audio stage with ``profile``, then the local engine, chunk by chunk."""
    chain, _label = filter_chain(profile)
    work.mkdir(parents=True, exist_ok=True)
    pieces = extract_audio_chunks(
        wav, work, chain=chain, chunk_seconds=CHUNK_SECONDS, timeout_s=FFMPEG_TIMEOUT_S
    )
    texts: list[str] = []
    for index, piece in enumerate(pieces):
        chunk = AudioChunk(
            index=index,
            key=piece.path.name,
            start_s=piece.start_s,
            duration_s=piece.duration_s,
            size_bytes=piece.path.stat().st_size,
        )
        texts.extend(segment.text for segment in engine.transcribe_chunk(piece.path, chunk))
    return " ".join(texts)


def score(reference: str, hypothesis: str) -> dict[str, float]:
    hypothesis = normalise(hypothesis)
    if not hypothesis:
        return {"wer": 1.0, "cer": 1.0}
    return {
        "wer": round(float(jiwer.wer(reference, hypothesis)), 4),
        "cer": round(float(jiwer.cer(reference, hypothesis)), 4),
    }


def recommend(means: dict[str, dict[str, float]]) -> str:
    """The profile with the lowest mean WER; ties (within 0.1 point) go to the simpler one."""
    ordered = [profile.value for profile in PROFILE_ORDER if profile.value in means]
    best = min(means[p]["wer"] for p in ordered)
    return next(p for p in ordered if means[p]["wer"] <= best + 0.001)


def summarise(results: dict[str, dict[str, dict[str, Any]]], profiles: list[str]) -> dict[str, Any]:
    noisy = [condition for condition in results if condition != "clean"]

    def mean(conditions_: list[str], profile: str, metric: str) -> float:
        values = [results[c][profile][metric] for c in conditions_]
        return round(float(np.mean(values)), 4) if values else float("nan")

    means = {
        p: {"wer": mean(list(results), p, "wer"), "cer": mean(list(results), p, "cer")}
        for p in profiles
    }
    means_noisy = {
        p: {"wer": mean(noisy, p, "wer"), "cer": mean(noisy, p, "cer")} for p in profiles
    }
    wins = dict.fromkeys(profiles, 0)
    for condition in results:
        best = min(results[condition][p]["wer"] for p in profiles)
        for p in profiles:
            wins[p] += results[condition][p]["wer"] <= best + 0.001
    return {
        "mean": means,
        "mean_noisy": means_noisy,
        "wins": wins,
        "recommended_default": recommend(means),
    }


def table(results: dict[str, dict[str, dict[str, Any]]], summary: dict[str, Any]) -> str:
    profiles = list(summary["mean"])
    header = f"{'condition':<14}" + "".join(f"{p:>10}" for p in profiles)
    rows = [header, "-" * len(header)]
    for condition, by_profile in results.items():
        rows.append(
            f"{condition:<14}" + "".join(f"{by_profile[p]['wer']:>10.3f}" for p in profiles)
        )
    rows.append("-" * len(header))
    for label, key in (("mean", "mean"), ("mean (noisy)", "mean_noisy")):
        rows.append(f"{label:<14}" + "".join(f"{summary[key][p]['wer']:>10.3f}" for p in profiles))
    rows.append(f"{'wins':<14}" + "".join(f"{summary['wins'][p]:>10d}" for p in profiles))
    return "\n".join(rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from video_processor.stt.local_whisper import LocalWhisperSpeechToText

    utterances = load_corpus(Path(args.data))
    speech = join([read_wav(u.wav) for u in utterances])
    reference = " ".join(u.reference for u in utterances)
    profiles = [AudioProfile(p) for p in args.profiles]
    engine = LocalWhisperSpeechToText(language="en", cpu_threads=args.threads)
    started = time.monotonic()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        work = Path(tmp)
        for condition, signal in conditions(speech, args.noises, args.snrs).items():
            wav = work / f"{condition}.wav"
            write_wav(wav, signal)
            results[condition] = {}
            for profile in profiles:
                began = time.monotonic()
                hypothesis = transcribe(wav, profile, work / f"{condition}-{profile}", engine)
                results[condition][profile.value] = {
                    **score(reference, hypothesis),
                    "seconds": round(time.monotonic() - began, 2),
                    "hypothesis": normalise(hypothesis),
                }
                print(
                    f"{condition:<14}{profile.value:>10}  WER "
                    f"{results[condition][profile.value]['wer']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarise(results, [p.value for p in profiles])
    return {
        "engine": "local (faster-whisper, Whisper base int8, language=en, greedy, VAD)",
        "corpus": {
            "source": "Debian pocketsphinx-testdata: librivox/ + cards/",
            "utterances": len(utterances),
            "audio_seconds": round(len(speech) / SAMPLE_RATE_HZ, 2),
            "reference_words": len(reference.split()),
        },
        "profiles": {p.value: filter_chain(p)[0] or "(no filter)" for p in profiles},
        "noise": {"seeds": NOISE_SEEDS, "snr_db": list(args.snrs), "kinds": list(args.noises)},
        "normaliser": "lower-case; drop <s>, (id), [n]; strip punctuation; mr→mister; 0–10→words",
        "results": results,
        **summary,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": {"cpu_threads": args.threads, "python": platform.python_version()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default=str(DATA_ROOT))
    parser.add_argument("--output", default=str(RESULTS_PATH))
    parser.add_argument("--profiles", nargs="+", default=[p.value for p in PROFILE_ORDER][::-1])
    parser.add_argument("--noises", nargs="+", default=list(NOISES), choices=NOISES)
    parser.add_argument("--snrs", nargs="+", type=int, default=list(SNRS_DB))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    report = run(args)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(report["results"], report))
    print(
        f"\nrecommended default AUDIO_PROFILE: {report['recommended_default']} "
        f"(lowest mean WER; {report['elapsed_s']} s; written to {output})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Transcripts users can trust, per kind of upload: ``make bench-transcripts``.

Each case is a media file made here (espeak-ng Korean over a test picture, as ``make
demo`` makes it; Debian's real English speech; noise, silence and synthetic music),
run through the pipeline's own code with the local engine: the audio stage
(``extract_audio_chunks``, default profile), ``stages.transcribe_checked`` per chunk (gap
check and fallback decode), ``stages.join_chunks`` and the quality gate with the default
settings. Nothing is mocked; no Prefect, S3 or summariser is involved.

Per case: CER (Korean, spaces and punctuation removed) or WER (English, the accuracy
bench's normaliser) where a reference exists; coverage, the share of 30-s windows with
sound that have a segment; loop segments the gate caught, and whether any loop reached
the summariser's input; the job's low-confidence share; gaps; the gate's outcome.
Written to ``bench/results/transcripts.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from bench.accuracy import (
    join,
    load_corpus,
    make_noise,
    mix_at_snr,
    normalise,
    read_wav,
    write_wav,
)
from local_stack.sample_video import DEFAULT_KOREAN_TEXT, korean_cer, make_korean_speech_video
from local_stack.sample_video import _ffmpeg as ffmpeg
from video_processor import stages
from video_processor.chunking import extract_audio_chunks
from video_processor.config import Settings
from video_processor.errors import TranscriptRejected
from video_processor.ffmpeg import SAMPLE_RATE_HZ, filter_chain
from video_processor.llm.gate import is_dominated, loop_segments, screen_for_summary
from video_processor.models import AudioChunk, TimeRange, Transcript

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "transcripts.json"
WINDOW_S = 30.0
WINDOW_MIN_SOUND_S = 3.0
FFMPEG_TIMEOUT_S = 300.0
MUSIC_SEED = 4404
# Three paragraphs read one after the other: a multi-minute upload with speech throughout.
LONG_KOREAN_TEXT = " ".join(
    [
        DEFAULT_KOREAN_TEXT,
        "오늘은 지난 분기의 결과를 말씀드리겠습니다. 매출은 조금 늘었고 비용은 줄었습니다.",
        "다음 달에는 새로운 직원이 세 명 들어옵니다. 교육 일정은 따로 알려 드리겠습니다.",
        "주말에는 가족과 함께 제주도에 갈 예정입니다. 바다가 아름답고 음식이 맛있습니다.",
        "질문이 있으시면 언제든지 말씀해 주세요. 모두 수고 많으셨습니다. 감사합니다.",
    ]
    * 3
)


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    language: str  # STT_LANGUAGE for the case
    reference: str | None = None
    metric: str = "cer"


def english_wer(reference: str, hypothesis: str) -> float:
    hyp = normalise(hypothesis)
    return 1.0 if not hyp else round(float(jiwer.wer(normalise(reference), hyp)), 4)


def _wav_to_mp4(signal: np.ndarray[Any, Any], work: Path, name: str) -> Path:
    wav = work / f"{name}.wav"
    write_wav(wav, signal)
    return ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", "64k"], work / f"{name}.mp4")


def music(seconds: float) -> np.ndarray[Any, Any]:
    """Chords of three sine notes with a decaying envelope, a new chord every half second."""
    rng = np.random.default_rng(MUSIC_SEED)
    beat = round(0.5 * SAMPLE_RATE_HZ)
    t = np.arange(beat) / SAMPLE_RATE_HZ
    notes = []
    for _ in range(round(seconds / 0.5)):
        root = 220 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1, 1.26, 1.5))
        notes.append(0.25 * chord * np.exp(-3 * t))
    return np.concatenate(notes)


def make_cases(work: Path) -> list[tuple[Case, Path]]:
    english = load_corpus()
    speech = join([read_wav(u.wav) for u in english])
    english_text = " ".join(u.reference for u in english)
    white = make_noise("white", len(speech), 1101)
    silence = np.zeros(20 * SAMPLE_RATE_HZ)
    return [
        (
            Case("demo-sample", "korean", "ko", DEFAULT_KOREAN_TEXT),
            make_korean_speech_video(work / "demo.mp4"),
        ),
        (
            Case("korean-3min", "korean multi-minute", "ko", LONG_KOREAN_TEXT),
            make_korean_speech_video(work / "long.mp4", LONG_KOREAN_TEXT),
        ),
        (
            Case("english-auto", "english upload", "auto", english_text, "wer"),
            _wav_to_mp4(speech, work, "english"),
        ),
        (
            Case("english-white-0dB", "noisy speech", "auto", english_text, "wer"),
            _wav_to_mp4(mix_at_snr(speech, white, 0), work, "noisy"),
        ),
        (
            Case("white-noise-only", "noise", "ko"),
            _wav_to_mp4(0.3 * make_noise("white", len(speech), 1101), work, "noise"),
        ),
        (Case("silence", "silence", "ko"), _wav_to_mp4(silence, work, "silence")),
        (Case("music-only", "music", "ko"), _wav_to_mp4(music(30.0), work, "music")),
    ]


def coverage(chunks: Sequence[AudioChunk], transcript: Transcript) -> float | None:
    """Share of 30-s windows with at least 3 s of sound that overlap a segment."""
    total = sum(chunk.duration_s for chunk in chunks)
    sound = [piece for chunk in chunks for piece in chunk.sound]
    with_sound = with_text = 0
    for start in np.arange(0.0, total, WINDOW_S):
        window = TimeRange(start_s=float(start), end_s=float(start) + WINDOW_S)
        heard = sum(
            max(0.0, min(p.end_s, window.end_s) - max(p.start_s, window.start_s)) for p in sound
        )
        if heard < WINDOW_MIN_SOUND_S:
            continue
        with_sound += 1
        with_text += any(
            s.start_s < window.end_s and s.end_s > window.start_s for s in transcript.segments
        )
    return round(with_text / with_sound, 3) if with_sound else None


def run_case(case: Case, media: Path, work: Path, engine: Any) -> dict[str, Any]:
    settings = Settings(stt_language=case.language)
    chain, _ = filter_chain(settings.audio_profile)
    folder = work / case.name
    folder.mkdir()
    began = time.monotonic()
    pieces = extract_audio_chunks(
        media, folder, chain=chain, chunk_seconds=55.0, timeout_s=FFMPEG_TIMEOUT_S
    )
    chunks = [
        AudioChunk(
            index=index,
            key=piece.path.name,
            start_s=piece.start_s,
            duration_s=piece.duration_s,
            size_bytes=piece.path.stat().st_size,
            sound=[TimeRange(start_s=a, end_s=b) for a, b in piece.sound],
            noisy=piece.noisy,
        )
        for index, piece in enumerate(pieces)
    ]
    engine.language = case.language
    parts = [
        stages.transcribe_checked(engine, p.path, c) for p, c in zip(pieces, chunks, strict=True)
    ]
    transcript = stages.join_chunks("local", case.language, chunks, parts)
    audio_s = sum(chunk.duration_s for chunk in chunks)
    row: dict[str, Any] = {
        "kind": case.kind,
        "audio_s": round(audio_s, 1),
        "language": transcript.language,
        "segments": len(transcript.segments),
        "coverage": coverage(chunks, transcript),
        "gaps_s": round(sum(gap.duration_s for gap in transcript.gaps), 1),
        "fallback_chunks": sum(part.fallback_decoded for part in parts),
        "noisy_share": transcript.noisy_share,
        "low_confidence_share": transcript.low_confidence_share,
    }
    if case.reference is not None:
        score = korean_cer if case.metric == "cer" else english_wer
        row[case.metric] = score(case.reference, transcript.text)
    try:
        screened = screen_for_summary(transcript, audio_s, settings)
    except TranscriptRejected as exc:
        row.update(outcome=f"FAILED {type(exc).__name__}", message=exc.message, loops=None)
        row["loop_reached_summary"] = False
    else:
        kept = screened.transcript
        row.update(
            outcome="DONE (flagged)"
            if transcript.gaps or row["low_confidence_share"] >= 0.5
            else "DONE",
            loops=len(screened.report.loop_segment_ids),
            loop_reached_summary=bool(loop_segments(kept.segments)) or is_dominated(kept.text),
        )
    row["seconds"] = round(time.monotonic() - began, 1)
    row["transcript"] = transcript.text[:300]
    return row


def table(results: dict[str, dict[str, Any]]) -> str:
    header = (
        f"{'case':<19}{'lang':>5}{'CER/WER':>8}{'cover':>7}{'loops':>6}{'lowconf':>8}"
        f"{'gaps s':>7}  outcome"
    )
    rows = [header, "-" * (len(header) + 20)]
    for name, row in results.items():
        error = row.get("cer", row.get("wer"))
        rows.append(
            f"{name:<19}{row['language']:>5}{_cell(error):>8}{_cell(row['coverage']):>7}"
            f"{_cell(row['loops']):>6}{row['low_confidence_share']:>8.2f}{row['gaps_s']:>7.1f}"
            f"  {row['outcome']}"
        )
    return "\n".join(rows)


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", default=str(RESULTS_PATH))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="*", help="only these cases (default: all)")
    args = parser.parse_args(argv)
    from video_processor.stt.local_whisper import LocalWhisperSpeechToText

    engine = LocalWhisperSpeechToText(cpu_threads=args.threads)
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-transcripts-") as tmp:
        work = Path(tmp)
        for case, media in make_cases(work):
            if args.cases and case.name not in args.cases:
                continue
            results[case.name] = run_case(case, media, work, engine)
            print(f"{case.name}: {results[case.name]['outcome']}", file=sys.stderr, flush=True)
    scored = [row for row in results.values() if row.get("coverage") is not None]
    overall = {
        "cases": len(results),
        "loops_reaching_summary": sum(row["loop_reached_summary"] for row in results.values()),
        "min_coverage": min((row["coverage"] for row in scored), default=None),
        "done": sum(row["outcome"].startswith("DONE") for row in results.values()),
    }
    report = {
        "engine": "local (faster-whisper, Whisper base int8, greedy, VAD, fallback without VAD)",
        "results": results,
        "overall": overall,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": {"cpu_threads": args.threads, "python": platform.python_version()},
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"\noverall: {overall} ({report['elapsed_s']} s; written to {output})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

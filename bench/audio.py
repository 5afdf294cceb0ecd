"""Cost of the audio stage against the filter chain alone: ``make bench-audio``.

Input: an mp4 like an upload (1 fps H.264 picture, AAC 128 kb/s, 48 kHz stereo) whose audio
is espeak-ng reading a Korean paragraph (six sentences, 24.5 s, pauses of about 0.4 s
between sentences) over quiet pink noise (-50 dBFS, fixed seed), looped to ``--seconds``
(10 minutes by default). The paragraph is encoded once and its AAC packets are looped.

For each audio profile, on that same file, alternately and ``--repeats`` times:

- filter only: FFmpeg decodes the audio, runs the profile's ``filter_chain`` and writes
  mono 16 kHz 16-bit WAV to a file (no silence detection, no cutting);
- audio stage: ``video_processor.chunking.extract_audio_chunks`` as the pipeline calls it
  (decode, chain, silence detection, cutting into WAV chunks of at most 55 s).

Figures: wall-clock seconds (best and median), CPU seconds (FFmpeg plus, for the stage,
the Python cutting), ``ratio_to_filter_only`` = best stage time / best filter-only time,
and what the stage made: chunk count, durations, sizes and the share of cuts that fell in
a silence. The ffprobe call the stage makes first is timed apart (``probe_s``,
``ratio_with_probe``). On a shared machine wall times jump around; ``ratio_cpu`` (best CPU
seconds over best CPU seconds) is the steadier figure.

Output: a table on stdout and ``bench/results/audio.json``; ``ratio_to_filter_only`` at
the top level is the default profile's (``Settings.audio_profile``). Target: ≤ 1.15.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from video_processor.chunking import (
    SILENCE_MIN_S,
    SILENCE_NOISE_DB,
    ExtractedChunk,
    extract_audio_chunks,
)
from video_processor.config import AudioProfile, Settings
from video_processor.ffmpeg import (
    INPUT_DEMUXERS,
    INPUT_PROTOCOLS,
    SAMPLE_RATE_HZ,
    filter_chain,
    probe_media,
)

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "audio.json"
TEXT = (
    "안녕하세요. 오늘은 새로운 영상 서비스를 소개합니다. 이 서비스는 영상을 올리면 음성을 "
    "글로 바꾸고, 내용을 짧게 요약해 줍니다. 회의에 참석해 주셔서 감사합니다. 다음 주에는 "
    "더 많은 기능을 보여 드리겠습니다. 질문이 있으시면 언제든지 말씀해 주세요."
)
ESPEAK = ("espeak-ng", "-v", "ko", "-s", "150")
UPLOAD_RATE_HZ = 48_000
NOISE = f"anoisesrc=color=pink:amplitude=0.003:seed=7:r={UPLOAD_RATE_HZ}"
PICTURE = "testsrc=size=160x120:rate=1"
DEFAULT_SECONDS = 600.0
DEFAULT_REPEATS = 7
CHUNK_SECONDS = float(Settings.model_fields["audio_chunk_seconds"].default)
TIMEOUT_S = 1800.0
TARGET_RATIO = 1.15
DEFAULT_PROFILE = AudioProfile(Settings.model_fields["audio_profile"].default)
FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y")
T = TypeVar("T")


def _run(command: Sequence[str], stdin: str | None = None) -> None:
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-400:]}")


def make_speech_video(path: Path, seconds: float) -> Path:
    """The test upload: espeak-ng Korean over pink noise, looped to ``seconds``."""
    speech, period = path.with_suffix(".speech.wav"), path.with_suffix(".period.m4a")
    _run([*ESPEAK, "-w", str(speech)], stdin=TEXT)
    mix = (
        f"[0:a]aresample={UPLOAD_RATE_HZ}[s];[s][1:a]amix=inputs=2:duration=first:normalize=0,"
        "aformat=channel_layouts=stereo"
    )
    noisy = ["-i", str(speech), "-f", "lavfi", "-i", NOISE, "-filter_complex", mix]
    _run([*FFMPEG, *noisy, "-c:a", "aac", "-b:a", "128k", str(period)])
    picture = ["-f", "lavfi", "-i", f"{PICTURE}:d={seconds}"]
    looped = ["-stream_loop", "-1", "-i", str(period), "-t", str(seconds)]
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    streams = ["-map", "0:v", "-map", "1:a", *h264, "-c:a", "copy"]
    _run([*FFMPEG, *picture, *looped, *streams, str(path)])
    speech.unlink()
    period.unlink()
    return path


def filter_only(video: Path, chain: str, out: Path) -> None:
    """The baseline: decode, ``chain``, mono 16 kHz 16-bit WAV to ``out``, nothing else."""
    restricted = ["-protocol_whitelist", INPUT_PROTOCOLS, "-format_whitelist", INPUT_DEMUXERS]
    audio = ["-map", "0:a:0", "-vn", *(["-af", chain] if chain else [])]
    wav = ["-ac", "1", "-ar", str(SAMPLE_RATE_HZ), "-c:a", "pcm_s16le", str(out)]
    _run([*FFMPEG, *restricted, "-i", str(video), *audio, *wav])


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (FFmpeg)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action: Callable[[], T]) -> tuple[T, float, float]:
    """``action()``'s result, wall-clock seconds and CPU seconds."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = action()
    return result, time.perf_counter() - wall, _cpu_seconds() - cpu


def audio_stage(video: Path, out: Path, chain: str) -> list[ExtractedChunk]:
    """What the pipeline's audio stage runs after probing: ``extract_audio_chunks``."""
    return extract_audio_chunks(
        video, out, chain=chain, chunk_seconds=CHUNK_SECONDS, timeout_s=TIMEOUT_S
    )


def chunk_figures(chunks: list[ExtractedChunk]) -> dict[str, Any]:
    """Count, duration range and sizes of the chunks, and how many cuts fell in a silence."""
    durations = [chunk.duration_s for chunk in chunks]
    cuts = len(chunks) - 1
    at_silence = sum(chunk.cut_at_silence for chunk in chunks)
    return {
        "count": len(chunks),
        "duration_min_s": round(min(durations), 3),
        "duration_max_s": round(max(durations), 3),
        "total_s": round(sum(durations), 3),
        "max_bytes": max(chunk.path.stat().st_size for chunk in chunks),
        "cuts": cuts,
        "cuts_at_silence": at_silence,
        "fraction_cuts_at_silence": round(at_silence / cuts, 3) if cuts else None,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"best": round(min(values), 3), "median": round(statistics.median(values), 3)}


def measure(video: Path, profile: AudioProfile, repeats: int, work: Path) -> dict[str, Any]:
    """Filter-only and audio-stage timings of one profile, interleaved run by run.

    Both write fresh files each run, and alternate which goes first.
    """
    chain, label = filter_chain(profile)
    times: dict[str, list[float]] = {"filter": [], "stage": [], "filter_cpu": [], "stage_cpu": []}
    made: dict[str, object] = {}
    for run in range(repeats):
        out = work / f"{profile.value}-{run}"
        (out / "stage").mkdir(parents=True)
        actions: dict[str, Callable[[], object]] = {
            "filter": functools.partial(filter_only, video, chain, out / "filter-only.wav"),
            "stage": functools.partial(audio_stage, video, out / "stage", chain),
        }
        for name in sorted(actions, reverse=run % 2 == 1):
            made[name], wall, cpu = timed(actions[name])
            times[name].append(wall)
            times[f"{name}_cpu"].append(cpu)
    chunks = chunk_figures(cast(list[ExtractedChunk], made["stage"]))
    for run in range(repeats):
        shutil.rmtree(work / f"{profile.value}-{run}")
    probe_s = min(timed(lambda: probe_media(video))[1] for _ in range(repeats))
    return {
        "filter_chain": chain or "(no filter)",
        "label": label,
        "filter_only_s": _spread(times["filter"]),
        "audio_stage_s": _spread(times["stage"]),
        "probe_s": round(probe_s, 3),
        "ratio_to_filter_only": round(min(times["stage"]) / min(times["filter"]), 3),
        "ratio_cpu": round(min(times["stage_cpu"]) / min(times["filter_cpu"]), 3),
        "ratio_with_probe": round((min(times["stage"]) + probe_s) / min(times["filter"]), 3),
        "chunks": chunks,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    profiles = [AudioProfile(p) for p in args.profiles]
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        work = Path(tmp)
        video = make_speech_video(work / "upload.mp4", args.seconds)
        duration = probe_media(video).duration_s
        results = {}
        for profile in profiles:
            results[profile.value] = measure(video, profile, args.repeats, work)
            ratio = results[profile.value]["ratio_to_filter_only"]
            print(f"{profile.value:<10} ratio {ratio:.3f}", file=sys.stderr, flush=True)
    headline = DEFAULT_PROFILE.value if DEFAULT_PROFILE.value in results else profiles[0].value
    return {
        "ratio_to_filter_only": results[headline]["ratio_to_filter_only"],
        "profile": headline,
        "target": TARGET_RATIO,
        "file": {
            "duration_s": round(duration, 3),
            "source": "espeak-ng -v ko -s 150 paragraph + pink noise, looped; "
            "mp4 (H.264 1 fps, AAC 128k 48 kHz stereo)",
        },
        "silence": {"noise_db": SILENCE_NOISE_DB, "min_s": SILENCE_MIN_S},
        "chunk_seconds": CHUNK_SECONDS,
        "repeats": args.repeats,
        "timing": "ratio: best stage / best filter-only wall time (ratio_cpu: CPU time), "
        "runs interleaved",
        "profiles": results,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def table(report: dict[str, Any]) -> str:
    header = (
        f"{'profile':<10}{'filter s':>10}{'stage s':>10}{'ratio':>8}{'cpu ratio':>11}"
        f"{'chunks':>8}{'min s':>8}{'max s':>8}{'at silence':>12}"
    )
    rows = [header, "-" * len(header)]
    for profile, figures in report["profiles"].items():
        chunks = figures["chunks"]
        silence = chunks["fraction_cuts_at_silence"]
        rows.append(
            f"{profile:<10}{figures['filter_only_s']['best']:>10.2f}"
            f"{figures['audio_stage_s']['best']:>10.2f}{figures['ratio_to_filter_only']:>8.3f}"
            f"{figures['ratio_cpu']:>11.3f}{chunks['count']:>8d}{chunks['duration_min_s']:>8.1f}"
            f"{chunks['duration_max_s']:>8.1f}{'-' if silence is None else f'{silence:.0%}':>12}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="file length")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=[p.value for p in AudioProfile],
        choices=[p.value for p in AudioProfile],
    )
    parser.add_argument("--output", default=str(RESULTS_PATH))
    args = parser.parse_args(argv)
    report = run(args)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(report))
    print(
        f"\nratio_to_filter_only ({report['profile']}): {report['ratio_to_filter_only']:.3f} "
        f"(target ≤ {TARGET_RATIO}; {report['file']['duration_s']:.0f} s file; "
        f"written to {output})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

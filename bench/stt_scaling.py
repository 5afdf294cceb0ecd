"""STT-stage latency against video length, sequential against concurrent (CLOVA CSR).

Run: ``python -m bench.stt_scaling`` (``make bench-stt-scaling``). Only the STT stage is
measured, not the whole stack: a fake CLOVA CSR server (``local_stack.fake_clova``, served
from this process) answers after the issue's latency model, ``0.5 s + 0.15 × chunk
seconds``, and the pipeline's real client (``ClovaCsrSpeechToText``) sends it the chunks a
video of each length (1, 5, 10, 30, 60 min) is cut into: 55 s WAV chunks of a modulated
tone (the fake answers "" to silence), the last one shorter.

- *sequential*: one chunk after the other;
- *concurrent*: a thread pool of ``--concurrency`` workers (default 8, the default size of
  the ``stt-clova-csr`` global concurrency limit that bounds the flow's chunk tasks).

The fake checks every chunk as the real service does (ffprobe, then ffmpeg for silence),
about 0.2 CPU-second a request. The real service's latency includes its own decoding, so
here the model's latency is counted from the request's arrival with the checks inside it
(``ModelTimedClova``): an answer takes max(model, checks). ``late_answers`` counts the
requests whose checks outlasted the model (the fake, sharing this machine's cores, was
then the bottleneck, not the pipeline); it should be 0.

``--time-scale`` (default 0.25) multiplies the fake's latencies, and the measured times are
divided by it again: a 60-minute video sequentially is 66 × 8.75 s ≈ 10 min of waiting
unscaled, 2.4 min at 0.25 (the whole default run takes about 5 min). Below about 0.1,
the fake's checks of 8 concurrent chunks outlast the scaled model on 2 cores (late
answers). The client's own time per request (reading the chunk, the HTTP round trip:
``client_overhead_s``) is not scaled down, so it counts 1/scale times in the scaled-back
figures; ``--time-scale 1`` measures in real time. The model's own predictions are
written beside the measurements and drawn dashed.

Writes ``bench/results/stt_latency.json`` and the plot ``bench/results/stt_latency.png``
(matplotlib, from ``requirements-bench.txt``; ``--no-plot`` writes the JSON only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.latency_model import (
    CHUNK_SECONDS,
    CSR_CONCURRENCY,
    ISSUE_MODEL,
    LatencyModel,
    chunk_durations,
    makespan,
)
from local_stack.fake_clova import (
    DEFAULT_API_KEY,
    DEFAULT_API_KEY_ID,
    STT_PATH,
    ClovaConfig,
    FakeClova,
)
from local_stack.http_fake import Fault, Request, Response, start_server
from video_processor.models import AudioChunk
from video_processor.stt.clova_csr import ClovaCsrSpeechToText

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
DEFAULT_LENGTHS_MIN = (1.0, 5.0, 10.0, 30.0, 60.0)
DEFAULT_TIME_SCALE = 0.25
CALIBRATION_REQUESTS = 3
CALIBRATION_LATENCY_S = 1.0
CLIENT_TIMEOUT_S = 120.0
SAMPLE_RATE_HZ = 16_000
# The tone of local_stack.sample_video: amplitude-modulated at a syllable-like rate.
TONE = "0.5*sin(2*PI*220*t)*(0.5+0.5*sin(2*PI*4*t))"
MODES = ("sequential", "concurrent")


def log(message: str) -> None:
    print(f"[stt-scaling {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


class ModelTimedClova(FakeClova):
    """The fake CLOVA CSR whose answer takes the model's latency from the request's arrival,
    its own ffprobe/ffmpeg checks included (late when the checks take longer)."""

    def __init__(self, config: ClovaConfig | None = None) -> None:
        super().__init__(config)
        self._owed = threading.local()
        self._late_lock = threading.Lock()
        self.late_answers = 0

    def sleep(self, seconds: float) -> None:
        # The model latency `route` asks for is served once the checks are done.
        self._owed.seconds = seconds

    def route(self, request: Request, fault: Fault | None) -> Response:
        began = time.perf_counter()
        self._owed.seconds = 0.0
        response = super().route(request, fault)
        owed = float(self._owed.seconds)
        remaining = owed - (time.perf_counter() - began)
        if remaining > 0:
            super().sleep(remaining)
        elif owed > 0:
            with self._late_lock:
                self.late_answers += 1
        return response


@dataclass(frozen=True)
class Point:
    """One video length: measured and modelled STT-stage latency, in model seconds."""

    minutes: float
    chunks: int
    sequential_s: float
    concurrent_s: float
    model_sequential_s: float
    model_concurrent_s: float
    sequential_wall_s: float
    concurrent_wall_s: float

    @property
    def speedup(self) -> float:
        return self.sequential_s / self.concurrent_s if self.concurrent_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **{key: round(value, 3) for key, value in asdict(self).items()},
            "chunks": self.chunks,
            "speedup": round(self.speedup, 2),
        }


def model_latencies(
    durations: list[float], model: LatencyModel, concurrency: int
) -> tuple[float, float]:
    """What the latency model predicts: (sequential, concurrent on `concurrency` slots)."""
    requests = [model.csr_s(duration) for duration in durations]
    return sum(requests), makespan(requests, concurrency)


def make_tone_wav(path: Path, seconds: float) -> Path:
    """Mono 16 kHz 16-bit WAV of the modulated tone (what the audio stage stores)."""
    source = f"aevalsrc={TONE}:s={SAMPLE_RATE_HZ}:d={seconds:.3f}"
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", source, "-ac", "1", "-c:a", "pcm_s16le", str(path)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


class ChunkFiles:
    """One WAV file per distinct chunk length, made once and shared by every request."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._paths: dict[float, Path] = {}

    def get(self, seconds: float) -> Path:
        key = round(seconds, 3)
        if key not in self._paths:
            self._paths[key] = make_tone_wav(self.folder / f"chunk-{key:.3f}.wav", key)
        return self._paths[key]

    def chunks(self, durations: list[float]) -> list[tuple[Path, AudioChunk]]:
        pieces, start = [], 0.0
        for index, duration in enumerate(durations):
            path = self.get(duration)
            chunk = AudioChunk(
                index=index,
                key=f"bench/{index:05d}.wav",
                start_s=start,
                duration_s=duration,
                size_bytes=path.stat().st_size,
            )
            pieces.append((path, chunk))
            start += duration
        return pieces


def transcribe_all(
    stt: ClovaCsrSpeechToText, pieces: list[tuple[Path, AudioChunk]], workers: int
) -> float:
    """Wall seconds to transcribe every chunk with at most `workers` requests in flight."""
    began = time.perf_counter()
    if workers == 1:
        for path, chunk in pieces:
            stt.transcribe_chunk(path, chunk)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt") as pool:
            list(pool.map(lambda piece: stt.transcribe_chunk(*piece), pieces))
    return time.perf_counter() - began


def measure(
    lengths_min: Iterable[float],
    *,
    time_scale: float,
    concurrency: int,
    model: LatencyModel,
    work_dir: Path,
) -> tuple[list[Point], float, int]:
    """Every length in both modes; the client's time per request; the fake's late answers."""
    server = start_server(ModelTimedClova(ClovaConfig()))
    stt = ClovaCsrSpeechToText(
        url=f"{server.url}{STT_PATH}",
        api_key_id=DEFAULT_API_KEY_ID,
        api_key=DEFAULT_API_KEY,
        language="ko",
        timeout_s=CLIENT_TIMEOUT_S,
    )
    files = ChunkFiles(work_dir)
    try:
        # With a latency of 1 s, what a request takes beyond it is the client's own time.
        calibration = files.chunks([CHUNK_SECONDS] * CALIBRATION_REQUESTS)
        server.service.update_config({"base_latency_s": CALIBRATION_LATENCY_S})
        overhead_s = (
            transcribe_all(stt, calibration, workers=1) / len(calibration) - CALIBRATION_LATENCY_S
        )
        server.service.late_answers = 0
        scaled = model.scaled(time_scale)
        server.service.update_config(
            {"base_latency_s": scaled.csr_base_s, "per_audio_second_s": scaled.csr_per_audio_s}
        )
        points = []
        for minutes in lengths_min:
            durations = chunk_durations(minutes * 60.0)
            pieces = files.chunks(durations)
            walls = {
                mode: transcribe_all(stt, pieces, 1 if mode == "sequential" else concurrency)
                for mode in MODES
            }
            expected_sequential, expected_concurrent = model_latencies(
                durations, model, concurrency
            )
            point = Point(
                minutes=minutes,
                chunks=len(durations),
                sequential_s=walls["sequential"] / time_scale,
                concurrent_s=walls["concurrent"] / time_scale,
                model_sequential_s=expected_sequential,
                model_concurrent_s=expected_concurrent,
                sequential_wall_s=walls["sequential"],
                concurrent_wall_s=walls["concurrent"],
            )
            log(
                f"{minutes:g} min, {point.chunks} chunks: sequential {point.sequential_s:.1f} s, "
                f"concurrent {point.concurrent_s:.1f} s (x{point.speedup:.1f})"
            )
            points.append(point)
        stats = server.service.stats.snapshot()
        if stats.get("by_status") != {"200": stats.get("requests")}:
            raise RuntimeError(f"the fake CLOVA answered errors: {stats}")
        late = server.service.late_answers
    finally:
        stt.close()
        server.stop()
    return points, overhead_s, late


def caption(time_scale: float, concurrency: int, model: LatencyModel) -> str:
    scale = (
        "real time"
        if time_scale == 1
        else f"measured at time scale {time_scale:g} (fake latencies × {time_scale:g}), "
        f"times divided by {time_scale:g}"
    )
    return (
        f"Fake CLOVA CSR: {model.csr_base_s:g} s + {model.csr_per_audio_s:g} s × chunk seconds; "
        f"{CHUNK_SECONDS:g} s chunks; concurrent = {concurrency} in flight; {scale}. "
        "Dashed: the latency model's prediction."
    )


def plot(points: Sequence[Point], path: Path, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [point.minutes for point in points]
    figure, axes = plt.subplots(figsize=(8, 5.2), dpi=120)
    series = (
        ("sequential", "tab:red", [p.sequential_s for p in points], "model_sequential_s"),
        ("concurrent", "tab:blue", [p.concurrent_s for p in points], "model_concurrent_s"),
    )
    for label, color, values, model_field in series:
        axes.plot(minutes, values, marker="o", color=color, label=f"{label} (measured)")
        axes.plot(
            minutes,
            [getattr(point, model_field) for point in points],
            linestyle="--",
            color=color,
            alpha=0.6,
            label=f"{label} (model)",
        )
    for point in points:
        axes.annotate(
            f"×{point.speedup:.1f}",
            (point.minutes, point.concurrent_s),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
            color="tab:blue",
        )
    axes.set_xlabel("video length (min)")
    axes.set_ylabel("STT stage latency (s)")
    axes.set_title("CLOVA CSR: STT stage latency, sequential vs concurrent chunks")
    axes.set_xticks(minutes)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.text(0.01, 0.01, text, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def parse_lengths(text: str) -> list[float]:
    lengths = [float(part) for part in text.split(",") if part.strip()]
    if not lengths or any(length <= 0 for length in lengths):
        raise argparse.ArgumentTypeError("lengths are positive minutes, comma-separated")
    return lengths


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stt_scaling", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--lengths",
        type=parse_lengths,
        default=list(DEFAULT_LENGTHS_MIN),
        help="video lengths in minutes, comma-separated (default 1,5,10,30,60)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help="multiply the fake's latencies by this, divide the measured times by it",
    )
    parser.add_argument("--concurrency", type=int, default=CSR_CONCURRENCY)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not 0 < args.time_scale <= 1:
        parser.error("--time-scale must be in (0, 1]")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    model = ISSUE_MODEL
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stt-scaling-") as work:
        points, overhead_s, late = measure(
            args.lengths,
            time_scale=args.time_scale,
            concurrency=args.concurrency,
            model=model,
            work_dir=Path(work),
        )
    text = caption(args.time_scale, args.concurrency, model)
    json_path = args.output_dir / "stt_latency.json"
    png_path = args.output_dir / "stt_latency.png"
    report = {
        "points": [point.to_json() for point in points],
        "time_scale": args.time_scale,
        "times_are": "model seconds: measured wall time divided by time_scale",
        "concurrency": args.concurrency,
        "chunk_seconds": CHUNK_SECONDS,
        "latency_model": model.to_json(),
        "client_overhead_s": round(max(0.0, overhead_s), 4),
        "client_overhead_note": (
            "what one request takes beyond the fake's latency (reading the chunk, HTTP); "
            "it is not scaled, so it counts 1/time_scale times in the scaled-back figures"
        ),
        "late_answers": late,
        "late_answers_note": (
            "requests whose ffprobe/ffmpeg checks in the fake outlasted the model latency; "
            "above 0 the fake (on this machine's cores) was the bottleneck"
        ),
        "caption": text,
        "plot": None if args.no_plot else png_path.name,
        "wall_time_s": round(time.monotonic() - began, 1),
        "cpus": os.cpu_count(),
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_plot:
        plot(points, png_path, text)
    if late:
        log(f"warning: {late} answers of the fake came late (its checks outlasted the model)")
    print(f"STT stage latency (model seconds; written to {json_path}):")
    print(f"  {'min':>5} {'chunks':>6} {'sequential':>11} {'concurrent':>11} {'speedup':>8}")
    for point in points:
        print(
            f"  {point.minutes:>5g} {point.chunks:>6} {point.sequential_s:>10.1f}s "
            f"{point.concurrent_s:>10.1f}s {point.speedup:>7.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

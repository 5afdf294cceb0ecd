"""Peak memory of the audio stage for a small and a large upload (50 MB and 2 GB).

Run: ``python -m bench.memory`` (``make bench-memory``). The target: the worker's peak RSS
is the same, within 20 MB, whatever the video's size, because the upload is streamed to
disk and FFmpeg reads it from there; nothing holds the file whole in memory.

What is measured, and how: the stage that touches the video is ``prepare_audio`` (download
from S3, ffprobe, one FFmpeg pass into WAV chunks, chunk uploads). For each size the bench
starts a fresh Python process (``python -m bench.memory --child``) that imports what a flow
run imports (``flows.tasks``, so Prefect too; ``--bare`` skips it), then runs
``video_processor.stages.prepare_audio`` with the default settings (2 GiB upload cap, 55 s
chunks, the default audio profile) against a moto S3 server that this bench starts (or
``--endpoint``'s). A fresh process per video keeps one run's peak out of the other's. The
child reports:

- ``peak_rss_mb``: its own peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``, the
  kernel's high-water mark, the same as VmHWM): this is ``rss_small_mb``/``rss_large_mb``;
- ``ffmpeg_peak_rss_mb``: FFmpeg's own peak (its VmHWM, polled every 20 ms from
  ``/proc/<pid>/status`` while it runs; ffprobe's apart), reported apart: FFmpeg's memory
  is its own process's. ``RUSAGE_CHILDREN`` would not do: it also counts the pages the
  forked Python child shared before ``exec``, so it reads like the parent's RSS;
- ``rss_before_mb``: its resident set after the imports, before the stage.

The videos are made fast, not realistic: a grey rawvideo picture (no encoding, so 2 GB take
well under a minute to write) sized to reach the wanted file size, and the pipeline's usual
modulated tone as AAC audio; both sizes last ``--seconds`` (default 120 s: 3 chunks), so
only the size differs. Sizes are decimal: 2000 MB is 2.0e9 bytes, under the 2 GiB cap
(``MAX_VIDEO_BYTES``). moto keeps objects in its own process's memory or spool files;
that is moto's memory, not the worker's. Each video is deleted (locally and from S3) once
measured. Results go to ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_stack.stack import (
    LOCAL_REGION,
    REPO_ROOT,
    RESULT_BUCKET,
    VIDEO_BUCKET,
    aws_client,
    local_aws_env,
    moto_server,
)
from video_processor.config import load_settings

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "memory.json"
USER_ID = "bench-memory"
DEFAULT_SMALL_MB = 50.0
DEFAULT_LARGE_MB = 2000.0
DEFAULT_SECONDS = 120.0
TARGET_DIFFERENCE_MB = 20.0
MB = 1_000_000  # file sizes: decimal
MIB = 1024 * 1024  # memory: binary (what the kernel counts in)
FPS = 25
ASPECT = 16 / 9
YUV420_BYTES_PER_PIXEL = 1.5
AUDIO_BITRATE_BPS = 48_000
MIN_SIDE = 16
TONE = "0.5*sin(2*PI*220*t)*(0.5+0.5*sin(2*PI*4*t))"
CHILD_TIMEOUT_S = 1800
RESULT_PREFIX = "@@memory-result@@ "


def log(message: str) -> None:
    print(f"[memory {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- videos of a given size ------------------------------------------------------------


def frame_size(target_bytes: int, seconds: float, fps: int = FPS) -> tuple[int, int]:
    """Width and height (even) of a yuv420p rawvideo picture that makes the file that big."""
    audio_bytes = AUDIO_BITRATE_BPS / 8 * seconds
    frame_bytes = max(0.0, target_bytes - audio_bytes) / (fps * seconds)
    pixels = frame_bytes / YUV420_BYTES_PER_PIXEL
    width = max(MIN_SIDE, 2 * round(math.sqrt(pixels * ASPECT) / 2))
    height = max(MIN_SIDE, 2 * round(pixels / width / 2))
    return width, height


def make_sized_video(path: Path, target_bytes: int, seconds: float) -> Path:
    """A Matroska file of about `target_bytes`: grey rawvideo and a modulated-tone AAC track."""
    width, height = frame_size(target_bytes, seconds)
    picture = f"color=c=gray:s={width}x{height}:r={FPS}:d={seconds:.3f}"
    tone = f"aevalsrc={TONE}:s=16000:d={seconds:.3f}"
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", tone),
            *("-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k"),
            *("-shortest", str(path)),
        ],
        check=True,
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
    )
    return path


# --- the child: one stage run in a fresh process -------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


class ChildPeaks(threading.Thread):
    """Polls the VmHWM of the processes this one runs (ffprobe, FFmpeg) while they live."""

    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(name="child-peaks", daemon=True)
        self.interval_s = interval_s
        # (pid, program) -> VmHWM KiB. By program too: until it execs FFmpeg, a child is
        # the forked Python, whose mm (and so VmHWM) is still the parent's.
        self.peaks: dict[tuple[str, str], int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def sample(self) -> None:
        for listing in Path("/proc/self/task").glob("*/children"):
            try:
                pids = listing.read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                key = (pid, fields.get("Name", "?").strip())
                hwm = int((fields.get("VmHWM") or "0 kB").split()[0])
                self.peaks[key] = max(hwm, self.peaks.get(key, 0))

    def peak_mb(self, program: str) -> float:
        kib = max((hwm for (_, name), hwm in self.peaks.items() if name == program), default=0)
        return round(kib / 1024, 1)


def run_child(bucket: str, key: str, work_bucket: str, bare: bool) -> dict[str, Any]:
    """Run the audio stage once in this process and report its memory."""
    if not bare:
        import flows.tasks  # noqa: F401  (a flow run's imports: Prefect, blocks, engines)
    from video_processor import stages
    from video_processor.models import AudioOptions, JobContext, S3ObjectRef

    client = aws_client(os.environ, "s3")
    size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    job = JobContext.from_object(S3ObjectRef(bucket=bucket, key=key, size=size))
    if job is None:
        raise ValueError(f"{key} does not follow videos/<user>/<job>.<ext>")
    options = AudioOptions.from_settings(load_settings())
    rss_before = _status_kib("VmRSS")
    peaks = ChildPeaks()
    peaks.start()
    began = time.monotonic()
    try:
        manifest = stages.prepare_audio(client, job, work_bucket=work_bucket, options=options)
    finally:
        peaks.stop()
    elapsed = time.monotonic() - began
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "video_bytes": size,
        "peak_rss_mb": round(self_usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "vm_hwm_mb": round(_status_kib("VmHWM") / 1024, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "ffmpeg_peak_rss_mb": peaks.peak_mb("ffmpeg"),
        "ffprobe_peak_rss_mb": peaks.peak_mb("ffprobe"),
        "stage_s": round(elapsed, 2),
        "download_ms": manifest.download_ms,
        "ffmpeg_ms": manifest.ffmpeg_ms,
        "chunks": len(manifest.chunks),
        "video_duration_s": round(manifest.video_duration_s, 2),
        "max_video_bytes": options.max_video_bytes,
        "worker_imports": not bare,
    }


# --- the parent ----------------------------------------------------------------------


def ensure_buckets(s3: Any) -> None:
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for bucket in (VIDEO_BUCKET, RESULT_BUCKET):
        if bucket not in existing:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": LOCAL_REGION}
            )


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def measure_one(
    label: str, megabytes: float, seconds: float, env: dict[str, str], work: Path, bare: bool
) -> dict[str, Any]:
    """Make, upload and process one video in a child process; everything deleted after."""
    s3 = aws_client(env, "s3")
    video = work / f"{label}.mkv"
    key = f"videos/{USER_ID}/{label}.mkv"
    began = time.monotonic()
    make_sized_video(video, round(megabytes * MB), seconds)
    made_s = time.monotonic() - began
    size = video.stat().st_size
    log(f"{label}: {size / MB:.1f} MB video made in {made_s:.0f} s; uploading")
    try:
        s3.upload_file(str(video), VIDEO_BUCKET, key)
        video.unlink()
        log(f"{label}: uploaded; running the audio stage in a fresh process")
        command = [sys.executable, "-m", "bench.memory", "--child", "--key", key]
        completed = subprocess.run(
            command + (["--bare"] if bare else []),
            cwd=REPO_ROOT,
            env={**os.environ, **env, "TMPDIR": str(work)},
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if completed.returncode != 0 or not lines:
            raise RuntimeError(
                f"{label}: the child failed ({completed.returncode}): {completed.stderr[-2000:]}"
            )
        report: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    finally:
        video.unlink(missing_ok=True)
        s3.delete_object(Bucket=VIDEO_BUCKET, Key=key)
        delete_prefix(s3, RESULT_BUCKET, f"work/{USER_ID}/")
    report["video_mb"] = round(size / MB, 1)
    report["video_made_s"] = round(made_s, 1)
    log(
        f"{label}: peak RSS {report['peak_rss_mb']} MiB (FFmpeg {report['ffmpeg_peak_rss_mb']} "
        f"MiB), stage {report['stage_s']} s"
    )
    return report


def build_report(small: dict[str, Any], large: dict[str, Any], seconds: float) -> dict[str, Any]:
    difference = round(large["peak_rss_mb"] - small["peak_rss_mb"], 1)
    return {
        "rss_small_mb": small["peak_rss_mb"],
        "rss_large_mb": large["peak_rss_mb"],
        "rss_difference_mb": difference,
        "ffmpeg_rss_small_mb": small["ffmpeg_peak_rss_mb"],
        "ffmpeg_rss_large_mb": large["ffmpeg_peak_rss_mb"],
        "ffmpeg_rss_difference_mb": round(
            large["ffmpeg_peak_rss_mb"] - small["ffmpeg_peak_rss_mb"], 1
        ),
        "target_difference_mb": TARGET_DIFFERENCE_MB,
        "target_met": abs(difference) <= TARGET_DIFFERENCE_MB,
        "units": "RSS in MiB (kernel high-water mark); video sizes in decimal MB",
        "measured": "peak RSS of a fresh Python process running stages.prepare_audio "
        "(download, ffprobe, FFmpeg, chunk uploads); FFmpeg/ffprobe peaks apart",
        "small": small,
        "large": large,
        "settings": {"video_seconds": seconds, "fps": FPS, "cpus": os.cpu_count()},
    }


def print_summary(report: dict[str, Any]) -> None:
    rows = (
        ("", "small", "large", "difference"),
        ("video (MB)", report["small"]["video_mb"], report["large"]["video_mb"], ""),
        (
            "worker peak RSS (MiB)",
            report["rss_small_mb"],
            report["rss_large_mb"],
            report["rss_difference_mb"],
        ),
        (
            "FFmpeg peak RSS (MiB)",
            report["ffmpeg_rss_small_mb"],
            report["ffmpeg_rss_large_mb"],
            report["ffmpeg_rss_difference_mb"],
        ),
        (
            "RSS before the stage (MiB)",
            report["small"]["rss_before_mb"],
            report["large"]["rss_before_mb"],
            "",
        ),
        ("stage (s)", report["small"]["stage_s"], report["large"]["stage_s"], ""),
    )
    for name, *values in rows:
        print(f"  {name:<28}" + "".join(f"{value!s:>12}" for value in values))
    print(f"  target: equal within {TARGET_DIFFERENCE_MB:g} MiB -> met: {report['target_met']}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--small-mb", type=float, default=DEFAULT_SMALL_MB)
    parser.add_argument("--large-mb", type=float, default=DEFAULT_LARGE_MB)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="both videos")
    parser.add_argument("--endpoint", help="a running moto server (default: start one)")
    parser.add_argument("--bare", action="store_true", help="child without the flow's imports")
    parser.add_argument("--work-dir", type=Path, default=None, help="where videos are made")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.child:
        result = run_child(VIDEO_BUCKET, args.key, RESULT_BUCKET, args.bare)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if not 0 < args.small_mb < args.large_mb:
        parser.error("need 0 < --small-mb < --large-mb")
    cap = load_settings().max_video_bytes
    if args.large_mb * MB > cap:
        parser.error(f"--large-mb {args.large_mb:g} is over the upload cap ({cap} bytes)")
    with contextlib.ExitStack() as stack:
        env = (
            local_aws_env(args.endpoint)
            if args.endpoint is not None
            else stack.enter_context(moto_server())
        )
        ensure_buckets(aws_client(env, "s3"))
        with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.work_dir) as work:
            small, large = (
                measure_one(label, size, args.seconds, env, Path(work), args.bare)
                for label, size in (("small", args.small_mb), ("large", args.large_mb))
            )
    report = build_report(small, large, args.seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"audio stage memory (written to {args.output}):")
    print_summary(report)
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

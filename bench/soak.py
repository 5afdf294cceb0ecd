"""Soak benchmark: many short runs through the warm worker; its memory and temp files.

Run: ``python -m bench.soak [--runs 500] [--batch 100]`` (``make bench-soak``). It starts
its own local stack (``--engines fake``) in a temporary folder, with ``TMPDIR`` set to a
folder of its own (the warm worker inherits it, so the temp files counted are the
stack's alone), with engine limits that leave no run waiting for a slot
(``ENGINE_LIMITS``), and gives the fakes the issue's latency model scaled down
(``--latency-scale``, 0.1: the soak is about the worker's process, not the engines).

A short tone video (``--seconds``, 5) is uploaded ``--batch`` copies at a time through
the stack's S3 notification → SQS → sensor → the warm deployment → the warm worker; each
batch is waited for (every job's final callback, then no run active) before the next.
After the warm-up job and after every batch the bench reads the warm worker's resident
memory (``VmRSS`` of ``/proc/<pid>/status``) and the ``avp-*`` entries (the stages'
private work folders) left under the temp folder.

Reported: ``rss_mib`` at the start (after the warm-up job: the flow loaded), after 100 and
after all runs, every batch's figure in ``rss_by_runs_mib``, ``temp_files_left`` (names)
and the jobs that did not end DONE. The target: no growth, read as the RSS after all
runs at most ``GROWTH_TOLERANCE`` (10 %) above the RSS after 100 runs (the first 100 fill
the caches that are meant to stay: blocks, clients, imported engines), and no temp file
left. Results go to ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos import Component, active_flow_runs, backend_jobs, is_final, kill_leftovers
from bench.latency_model import ISSUE_MODEL, configure_fakes
from local_stack.sample_video import make_tone_video
from local_stack.stack import WARM_WORK_POOL, aws_client, stack_command, stack_up

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "soak.json"
USER_ID = "soak"
GROWTH_TOLERANCE = 0.10
TEMP_PREFIX = "avp-"
UPLOAD_THREADS = 8
POLL_S = 1.0
SETTLE_TIMEOUT_S = 120.0
WARM_WORKER_MARKER = ("worker", "start", "--pool", WARM_WORK_POOL)
# Room for every run the warm worker holds (16 by default): a call refused a slot would
# sleep for the server's Retry-After (up to 30 s), and the soak is not about the limits.
ENGINE_LIMITS = {"CLOVA_CSR_CONCURRENCY": "32", "CLAUDE_CONCURRENCY": "16"}


def log(message: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def temp_left(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.glob(f"{TEMP_PREFIX}*"))


def verdict(rss_by_runs: dict[int, float], temp_files: list[str]) -> dict[str, Any]:
    """Growth from the run count nearest 100 to the last one, against the tolerance."""
    counts = sorted(rss_by_runs)
    reference = min((count for count in counts if count > 0), key=lambda c: abs(c - 100))
    last = counts[-1]
    growth = rss_by_runs[last] - rss_by_runs[reference]
    return {
        "reference_runs": reference,
        "growth_mib": round(growth, 1),
        "growth_ratio": round(growth / rss_by_runs[reference], 3),
        "no_growth": growth <= GROWTH_TOLERANCE * rss_by_runs[reference],
        "no_temp_files_left": not temp_files,
    }


def build_report(
    rss_by_runs: dict[int, float],
    temp_files: list[str],
    not_done: list[str],
    settings: dict[str, Any],
) -> dict[str, Any]:
    counts = sorted(rss_by_runs)
    after_100 = min((c for c in counts if c > 0), key=lambda c: abs(c - 100))
    targets = verdict(rss_by_runs, temp_files)
    return {
        "runs": counts[-1],
        "rss_mib": {
            "start": rss_by_runs[counts[0]],
            f"after_{after_100}": rss_by_runs[after_100],
            f"after_{counts[-1]}": rss_by_runs[counts[-1]],
        },
        "rss_by_runs_mib": {str(count): rss_by_runs[count] for count in counts},
        "temp_files_left": temp_files,
        "not_done": not_done,
        "targets": {"growth_tolerance": GROWTH_TOLERANCE, **targets},
        "target_met": targets["no_growth"] and targets["no_temp_files_left"] and not not_done,
        "settings": settings,
    }


class Soak:
    def __init__(self, folder: Path, env: dict[str, str], video: Path, timeout_s: float) -> None:
        self.env, self.video, self.timeout_s = env, video, timeout_s
        self.s3 = aws_client(env, "s3")
        self.worker = Component("warm-worker", WARM_WORKER_MARKER, env["PREFECT_API_URL"])
        self.not_done: list[str] = []
        self.count = 0

    def worker_pid(self) -> int:
        pid = self.worker.find()
        if pid is None:
            raise RuntimeError("the stack's warm worker is not running")
        return pid

    def batch(self, size: int) -> None:
        jobs = [f"soak-{self.count + index:05d}" for index in range(size)]
        self.count += size
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(
                pool.map(
                    lambda job: self.s3.upload_file(
                        str(self.video),
                        self.env["VIDEO_BUCKET_NAME"],
                        f"videos/{USER_ID}/{job}.mp4",
                    ),
                    jobs,
                )
            )
        deadline = time.monotonic() + self.timeout_s
        records = backend_jobs(self.env)
        while time.monotonic() < deadline:
            records = backend_jobs(self.env)
            if all(is_final(records.get(job)) for job in jobs):
                break
            time.sleep(POLL_S)
        self.not_done += [job for job in jobs if (records.get(job) or {}).get("state") != "DONE"]
        deadline = time.monotonic() + SETTLE_TIMEOUT_S  # the runs' clean-up after the callback
        while active_flow_runs(self.env) and time.monotonic() < deadline:
            time.sleep(POLL_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=500, help="short runs in all (500)")
    parser.add_argument("--batch", type=int, default=100, help="uploads at once (100)")
    parser.add_argument("--seconds", type=float, default=5.0, help="video length (5)")
    parser.add_argument("--latency-scale", type=float, default=0.1, help="fakes' model (0.1)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--keep", action="store_true", help="keep the stack folder (logs)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.runs < 1 or args.batch < 1:
        parser.error("--runs and --batch must be at least 1")
    folder = Path(tempfile.mkdtemp(prefix="soak-stack-"))
    temp = folder / "tmp"
    temp.mkdir()
    os.environ.update(TMPDIR=str(temp), **ENGINE_LIMITS)  # the stack's processes inherit them
    load_at_start = os.getloadavg()
    log(f"starting the local stack in {folder}; load average {load_at_start}")
    began = time.monotonic()
    env: dict[str, str] | None = None
    report: dict[str, Any] | None = None
    try:
        env = stack_up(folder)
        configure_fakes(env, ISSUE_MODEL.scaled(args.latency_scale))
        video = make_tone_video(folder / "clip.mp4", seconds=args.seconds)
        soak = Soak(folder / "logs", env, video, timeout_s=300.0 + 2.0 * args.batch)
        soak.batch(1)  # the warm-up: the worker loads the flow, its blocks and clients
        pid = soak.worker_pid()
        rss_by_runs = {0: rss_mib(pid)}
        log(f"warm worker {pid}: {rss_by_runs[0]} MiB after the warm-up job")
        while soak.count - 1 < args.runs:
            soak.batch(min(args.batch, args.runs - (soak.count - 1)))
            if soak.worker_pid() != pid:
                raise RuntimeError("the warm worker was restarted during the soak")
            rss_by_runs[soak.count - 1] = rss_mib(pid)
            log(
                f"{soak.count - 1} runs: {rss_by_runs[soak.count - 1]} MiB, "
                f"{len(temp_left(temp))} temp entries, {len(soak.not_done)} not DONE"
            )
        report = build_report(
            rss_by_runs,
            temp_left(temp),
            soak.not_done,
            {
                "runs": args.runs,
                "batch": args.batch,
                "video_seconds": args.seconds,
                "latency_model": ISSUE_MODEL.scaled(args.latency_scale).to_json(),
                "temp_folder": "TMPDIR of the stack, its own folder",
                "engine_limits": ENGINE_LIMITS,
                "cpus": os.cpu_count(),
                "load_average_at_start": load_at_start,
                "load_average_at_end": os.getloadavg(),
                "total_s": round(time.monotonic() - began, 1),
            },
        )
    finally:
        stack_command("down", folder)
        if env is not None:
            left = kill_leftovers(env["PREFECT_API_URL"])
            if left:
                log(f"killed {len(left)} leftover processes of the stack: {left}")
        if args.keep or report is None:
            log(f"stack folder kept: {folder} (logs in {folder / 'logs'})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"soak, {report['runs']} runs (written to {args.output}):")
    print(f"  warm worker RSS MiB: {report['rss_mib']}")
    print(f"  by runs: {report['rss_by_runs_mib']}")
    print(f"  temp files left: {report['temp_files_left'] or 'none'}")
    print(f"  not DONE: {len(report['not_done'])}; target met: {report['target_met']}")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

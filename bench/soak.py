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

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import WARM_WORKER_MARKER, StackSession, rss_mib
from bench.latency_model import ISSUE_MODEL, configure_fakes
from local_stack.sample_video import make_tone_video
from local_stack.stack import aws_client

USER_ID = "soak"
GROWTH_TOLERANCE = 0.10
TEMP_PREFIX = "avp-"
POLL_S = 1.0
SETTLE_TIMEOUT_S = 120.0
# Room for every run the warm worker holds (16 by default): a call refused a slot would
# sleep for the server's Retry-After (up to 30 s), and the soak is not about the limits.
ENGINE_LIMITS = {"CLOVA_CSR_CONCURRENCY": "32", "CLAUDE_CONCURRENCY": "16"}
log = harness.logger("soak")


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
    def __init__(self, stack: StackSession, video: Path, timeout_s: float) -> None:
        self.env, self.video, self.timeout_s = stack.env, video, timeout_s
        self.s3 = aws_client(stack.env, "s3")
        self.worker = stack.component("warm-worker", WARM_WORKER_MARKER)
        self.not_done: list[str] = []
        self.count = 0

    def batch(self, size: int) -> None:
        jobs = [f"soak-{self.count + index:05d}" for index in range(size)]
        self.count += size
        keys = [f"videos/{USER_ID}/{job}.mp4" for job in jobs]
        harness.upload_all(self.s3, self.video, self.env["VIDEO_BUCKET_NAME"], keys)
        records = harness.wait_final(self.env, jobs, self.timeout_s, POLL_S)
        self.not_done += [job for job in jobs if (records.get(job) or {}).get("state") != "DONE"]
        # the runs' clean-up after the callback
        harness.settle(self.env, SETTLE_TIMEOUT_S, POLL_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.bench_parser("soak", __doc__)
    parser.add_argument("--runs", type=int, default=500, help="short runs in all (500)")
    parser.add_argument("--batch", type=int, default=100, help="uploads at once (100)")
    parser.add_argument("--seconds", type=float, default=5.0, help="video length (5)")
    parser.add_argument("--latency-scale", type=float, default=0.1, help="fakes' model (0.1)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.runs < 1 or args.batch < 1:
        parser.error("--runs and --batch must be at least 1")
    session = StackSession("soak", keep=args.keep)
    temp = session.folder / "tmp"
    temp.mkdir()
    os.environ.update(TMPDIR=str(temp), **ENGINE_LIMITS)  # the stack's processes inherit them
    with session as stack:
        configure_fakes(stack.env, ISSUE_MODEL.scaled(args.latency_scale))
        video = make_tone_video(stack.folder / "clip.mp4", seconds=args.seconds)
        soak = Soak(stack, video, timeout_s=300.0 + 2.0 * args.batch)
        soak.batch(1)  # the warm-up: the worker loads the flow, its blocks and clients
        pid = soak.worker.pid()
        rss_by_runs = {0: rss_mib(pid)}
        log(f"warm worker {pid}: {rss_by_runs[0]} MiB after the warm-up job")
        while soak.count - 1 < args.runs:
            soak.batch(min(args.batch, args.runs - (soak.count - 1)))
            if soak.worker.pid() != pid:
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
                **harness.machine(stack.load_at_start),
                "total_s": stack.elapsed(),
            },
        )
        stack.succeeded(True)
    harness.write_report(report, args.output, f"soak, {report['runs']} runs")
    print(f"  warm worker RSS MiB: {report['rss_mib']}")
    print(f"  by runs: {report['rss_by_runs_mib']}")
    print(f"  temp files left: {report['temp_files_left'] or 'none'}")
    print(f"  not DONE: {len(report['not_done'])}; target met: {report['target_met']}")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Chaos test: N uploads through the local stack while its parts are killed and its fakes fail.

Run: ``python -m bench.chaos [--n N]`` (``make chaos N=...``). It starts its own local
stack (``--engines fake``; its Prefect server on ``--db``, default ``$PREFECT_DB`` or SQLite,
as ``database`` in the report) in a temporary folder, then at the same time:

- uploads N copies of one short tone video under distinct keys ``videos/chaos/<job>.mp4``,
  spread over ``--upload-seconds``;
- sends the S3 event of ``--duplicate-ratio`` (10 %) of them to the queue a second time,
  a few seconds to a minute after the upload (as SQS may redeliver);
- keeps ``--fault-ratio`` (5 %) of the requests to the fake CLOVA CSR and Anthropic
  servers failing: each second it queues faults (HTTP 500/502/503, or a 4 s stall that
  outlasts the clients' 5 s timeout) so that faults ≈ ratio × requests served;
- SIGKILLs the sensor ``--sensor-kill-seconds`` (20 s ±25 %) after it is up (serves
  /metrics); on a loaded machine its start alone takes 10-20 s;
- hits the warm worker, which runs every flow run in its own process, when 25 %, 45 %
  and 65 % of the jobs are final: SIGKILL (``--worker-kills``, twice), as when its pod
  or node is lost, and SIGTERM (``--worker-terms``, once), as when its pod is stopped
  (it drains the runs in hand).

The stack's supervisor starts a killed sensor or worker again (as Kubernetes restarts a
pod); nothing is done by hand. The bench waits until every job has a final callback (or
``--timeout``, default 240 s + 5.5 s per job), lets the stack settle (no flow run still
active, queue empty), and reports:

- ``submitted``, ``done``, ``failed``; ``late``: no final callback at the deadline but
  a run still on its way (active, or Crashed and awaiting its recovery); ``lost``: no
  final callback and nothing left that would send one;
- ``duplicate_final_callbacks``: jobs whose backend record holds more than one accepted
  final callback (two DONEs, or a FAILED later replaced by a DONE);
- ``max_result_objects_per_job``: result objects per job under ``results/chaos/``, counting
  only the result JSON ``<job>.json``. Its companions (``.srt``, ``.vtt`` and the outbox
  record ``.callback.json``) are counted separately in ``companion_objects``;
- flow runs per job, callbacks re-sent (same delivery id), DLQ depth, faults applied,
  kills, wall time and jobs per minute.

The results go to ``bench/results/chaos.json`` and are printed. The stack is stopped on
every path; its folder (logs in ``logs/``, kills in ``logs/chaos.log``) is removed when
the target is met and kept, with its path printed, when it is not (or with ``--keep``).
"""

from __future__ import annotations

import heapq
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import harness
from bench.chaos_report import FAULT_TARGETS, USER_ID, VIDEO_SECONDS, collect, print_summary
from bench.harness import (
    SENSOR_MARKER,
    WARM_WORKER_MARKER,
    Component,
    StackSession,
    backend_jobs,
    is_final,
)
from local_stack.sample_video import make_tone_video
from local_stack.stack import aws_client

FAULT_STATUSES = (500, 502, 503)
FAULT_TIMEOUT_S = 6.0  # the clients give up after 5 s in fake mode, then retry
FAULT_TIMEOUT_SHARE = 0.4
FAULTS_PER_TICK_MAX = 2  # fewer than a task's attempts: a burst cannot fail one job alone
FAULT_TICK_S = 1.0
DUPLICATE_DELAY_S = (2.0, 60.0)
WORKER_HIT_PROGRESS = (0.25, 0.45, 0.65)
SUCCESSOR_TIMEOUT_S = 120.0
SENSOR_RESTART_DELAY_S = 1.0
SENSOR_START_TIMEOUT_S = 60.0
KILL_JITTER = 0.25
POLL_S = 2.0
SETTLE_TIMEOUT_S = 90.0
log = harness.logger("chaos")


@dataclass
class Settings:
    n: int
    timeout_s: float
    upload_s: float
    duplicate_ratio: float
    fault_ratio: float
    sensor_kill_s: float
    worker_kills: int
    worker_terms: int
    seed: int


@dataclass
class Chaos:
    settings: Settings
    folder: Path
    env: dict[str, str]
    rng: random.Random
    stop: threading.Event = field(default_factory=threading.Event)
    events: list[dict[str, Any]] = field(default_factory=list)
    faults_injected: Counter[str] = field(default_factory=Counter)
    duplicates_sent: int = 0
    sensor: Component = field(init=False)
    worker: Component = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        api = self.env["PREFECT_API_URL"]
        self.sensor = Component("sensor", SENSOR_MARKER, api)
        self.worker = Component("warm-worker", WARM_WORKER_MARKER, api)

    def note(self, what: str, **details: Any) -> None:
        record = {"at": datetime.now(UTC).isoformat(), "event": what, **details}
        with self._lock:
            self.events.append(record)
            with (self.folder / "logs" / "chaos.log").open("a") as out:
                out.write(json.dumps(record) + "\n")
        log(f"{what} {details}")

    # faults ----------------------------------------------------------------------------

    def inject_faults(self) -> None:
        """Each tick, top the faults up to `fault_ratio` of the requests each fake served."""
        with httpx.Client(timeout=5) as http:
            while not self.stop.wait(FAULT_TICK_S):
                for variable in FAULT_TARGETS:
                    base = self.env[variable]
                    try:
                        served = int(http.get(f"{base}/__admin/stats").json()["requests"])
                        owed = int(served * self.settings.fault_ratio) - self.faults_injected[base]
                        faults = [
                            self._random_fault() for _ in range(min(owed, FAULTS_PER_TICK_MAX))
                        ]
                        if faults:
                            http.post(
                                f"{base}/__admin/faults", json={"faults": faults}
                            ).raise_for_status()
                            self.faults_injected[base] += len(faults)
                    except httpx.HTTPError as exc:
                        log(f"fault injection on {base} failed: {exc!r}")

    def _random_fault(self) -> dict[str, Any]:
        if self.rng.random() < FAULT_TIMEOUT_SHARE:
            return {"kind": "timeout", "seconds": FAULT_TIMEOUT_S}
        return {"status": self.rng.choice(FAULT_STATUSES)}

    # kills -----------------------------------------------------------------------------

    def kill_sensor_periodically(self) -> None:
        """Kill the sensor ~`sensor_kill_s` after it is up again: under load its start alone
        can take that long, and a sensor killed before it polls would never work."""
        interval = self.settings.sensor_kill_s
        while not self.stop.is_set():
            started_in = harness.sensor_ready(self.env, SENSOR_START_TIMEOUT_S, self.stop)
            uptime = interval * self.rng.uniform(1 - KILL_JITTER, 1 + KILL_JITTER)
            if self.stop.wait(uptime):
                break
            killed = self.sensor.kill(with_children=False)
            waited = SENSOR_START_TIMEOUT_S if started_in is None else started_in
            self.note("sensor-killed", pids=killed, start_s=round(waited, 1))
            successor = self.sensor.wait_for_successor(killed[0] if killed else None, 60)
            self.note("sensor-restarted", pid=successor)

    def hit_worker(self, how: str, progress: float) -> None:
        """SIGKILL or SIGTERM the warm worker; the supervisor starts its successor."""
        if how == "kill":
            killed = self.worker.kill(with_children=True)
            old = killed[0] if killed else None
        else:
            old = self.worker.terminate()
        self.note(f"worker-{how}", pid=old, progress=round(progress, 3))
        successor = self.worker.wait_for_successor(old, SUCCESSOR_TIMEOUT_S)
        self.note("worker-restarted", pid=successor)

    # uploads ---------------------------------------------------------------------------

    def duplicate_event(self, key: str, head: dict[str, Any]) -> str:
        """The S3 notification moto already sent for `key`, as SQS may deliver it again."""
        return json.dumps(
            {
                "Records": [
                    {
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "awsRegion": self.env["AWS_REGION"],
                        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "s3SchemaVersion": "1.0",
                            "bucket": {"name": self.env["VIDEO_BUCKET_NAME"]},
                            "object": {
                                "key": key.replace("/", "%2F"),
                                "size": head["ContentLength"],
                                "eTag": head["ETag"].strip('"'),
                            },
                        },
                    }
                ]
            }
        )


def worker_hits(kills: int, terms: int) -> list[str]:
    """Kill, term, kill, …: each drain falls between two losses."""
    hits: list[str] = []
    while kills or terms:
        if kills:
            hits.append("kill")
            kills -= 1
        if terms:
            hits.append("term")
            terms -= 1
    return hits


def run_chaos(chaos: Chaos, jobs: list[str]) -> dict[str, Any]:
    settings, env, rng = chaos.settings, chaos.env, chaos.rng
    s3, sqs = aws_client(env, "s3"), aws_client(env, "sqs")
    video = make_tone_video(chaos.folder / "chaos-clip.mp4", seconds=VIDEO_SECONDS)
    if chaos.sensor.find() is None or chaos.worker.find() is None:
        raise RuntimeError("the stack's sensor or worker process was not found in /proc")
    threads = [
        threading.Thread(target=chaos.inject_faults, name="faults", daemon=True),
        threading.Thread(target=chaos.kill_sensor_periodically, name="sensor", daemon=True),
    ]
    for thread in threads:
        thread.start()

    duplicated = set(rng.sample(jobs, round(len(jobs) * settings.duplicate_ratio)))
    pending_duplicates: list[tuple[float, str, str]] = []
    hits = worker_hits(settings.worker_kills, settings.worker_terms)
    worker_marks = list(zip(WORKER_HIT_PROGRESS, hits, strict=False))
    started = time.monotonic()
    deadline = started + settings.timeout_s
    upload_gap = settings.upload_s / max(1, len(jobs))
    next_upload, uploaded, finished = started, 0, 0
    last_report, last_poll = 0.0, 0.0
    statuses: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        now = time.monotonic()
        while uploaded < len(jobs) and now >= next_upload:
            job_id = jobs[uploaded]
            key = f"videos/{USER_ID}/{job_id}.mp4"
            s3.upload_file(str(video), env["VIDEO_BUCKET_NAME"], key)
            if job_id in duplicated:
                head = s3.head_object(Bucket=env["VIDEO_BUCKET_NAME"], Key=key)
                due = now + rng.uniform(*DUPLICATE_DELAY_S)
                heapq.heappush(pending_duplicates, (due, job_id, chaos.duplicate_event(key, head)))
            uploaded += 1
            next_upload += upload_gap
        while pending_duplicates and pending_duplicates[0][0] <= now:
            _, job_id, body = heapq.heappop(pending_duplicates)
            sqs.send_message(QueueUrl=env["SQS_QUEUE_URL"], MessageBody=body)
            chaos.duplicates_sent += 1
        if now - last_poll >= POLL_S:
            last_poll = now
            statuses = backend_jobs(env)
            finished = sum(is_final(statuses.get(job_id)) for job_id in jobs)
            progress = finished / len(jobs)
            if worker_marks and progress >= worker_marks[0][0]:
                _, how = worker_marks.pop(0)
                threading.Thread(
                    target=chaos.hit_worker, args=(how, progress), name="worker", daemon=True
                ).start()
            if now - last_report >= 30:
                last_report = now
                log(
                    f"uploaded {uploaded}/{len(jobs)}, final {finished}, "
                    f"elapsed {now - started:.0f} s"
                )
            if finished == len(jobs) and not pending_duplicates and not worker_marks:
                break
        time.sleep(0.05)
    processing_s = time.monotonic() - started
    log(f"{finished}/{len(jobs)} final after {processing_s:.0f} s; settling")

    chaos.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    harness.settle(env, SETTLE_TIMEOUT_S, POLL_S, sqs)
    return collect(chaos, jobs, duplicated, processing_s, harness.active_flow_runs(env), s3, sqs)


def main(argv: Iterable[str] | None = None) -> int:
    parser = harness.bench_parser("chaos", __doc__, database=True)
    parser.add_argument("--n", type=int, default=200, help="jobs to submit (default 200)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for every final callback"
    )
    parser.add_argument("--upload-seconds", type=float, default=None, help="spread the uploads")
    parser.add_argument("--duplicate-ratio", type=float, default=0.10)
    parser.add_argument("--fault-ratio", type=float, default=0.05)
    parser.add_argument("--sensor-kill-seconds", type=float, default=20.0)
    parser.add_argument("--worker-kills", type=int, default=2, choices=range(3))
    parser.add_argument("--worker-terms", type=int, default=1, choices=range(2))
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.n < 1:
        parser.error("--n must be at least 1")
    settings = Settings(
        n=args.n,
        timeout_s=args.timeout if args.timeout is not None else 240.0 + 5.5 * args.n,
        upload_s=args.upload_seconds if args.upload_seconds is not None else 2.0 * args.n,
        duplicate_ratio=args.duplicate_ratio,
        fault_ratio=args.fault_ratio,
        sensor_kill_s=args.sensor_kill_seconds,
        worker_kills=args.worker_kills,
        worker_terms=args.worker_terms,
        seed=args.seed,
    )
    with StackSession("chaos", database=args.db, keep=args.keep) as stack:
        log(f"stack up in {stack.stack_start_s:.0f} s; submitting {settings.n} jobs")
        chaos = Chaos(settings, stack.folder, stack.env, random.Random(settings.seed))
        stack.on_close(chaos.stop.set)
        report = run_chaos(chaos, harness.job_ids(settings.n, settings.seed))
        report["database"] = stack.env["PREFECT_DB"]
        report["stack_start_s"] = round(stack.stack_start_s, 1)
        report["total_s"] = stack.elapsed()
        stack.succeeded(report["target_met"])
    report["stack_folder"] = stack.kept_folder
    harness.write_report(report, args.output, f"chaos test, N={settings.n}, {report['database']}")
    print_summary(report)
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

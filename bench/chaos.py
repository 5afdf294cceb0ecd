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

import argparse
import heapq
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort

from local_stack.database import add_database_argument
from local_stack.sample_video import make_tone_video
from local_stack.stack import (
    aws_client,
    prefect_client,
    read_stack_env,
    set_restart_env,
    stack_command,
)

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "chaos.json"
USER_ID = "chaos"
RESULT_PREFIX = f"results/{USER_ID}/"
VIDEO_SECONDS = 2.5
COMPANION_SUFFIXES = (".callback.json", ".srt", ".vtt")
FAULT_TARGETS = ("FAKE_CLOVA_URL", "FAKE_ANTHROPIC_URL")
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
PREFECT_PAGE = 200
DLQ_PEEKS = 50
DLQ_PEEK_HIDE_S = 30  # each message is read once; the stack is stopped right after
# A job whose run is in one of these is late rather than lost: something will finish it.
ON_ITS_WAY = {
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "PAUSED",
    "CANCELLING",
    "CRASHED",  # its recovery is on its way
}
ACTIVE_STATES = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.CANCELLING,
    StateType.PAUSED,
]


def log(message: str) -> None:
    print(f"[chaos {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- processes of the stack, found through /proc ---------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    cmdline: list[str]


def _processes() -> Iterator[ProcessInfo]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if not raw:
            continue  # a zombie or a kernel thread
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        cmdline = [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]
        yield ProcessInfo(int(entry.name), ppid, cmdline)


def _environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if item)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for info in _processes():
        children.setdefault(info.ppid, []).append(info.pid)
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Component:
    """A long-running part of the stack (sensor, worker) that the chaos kills; the stack's
    supervisor starts it again, as Kubernetes restarts a pod."""

    name: str
    marker: Sequence[str]  # every one of these occurs in its command line
    api_url: str
    kills: int = 0
    terms: int = 0

    def find(self) -> int | None:
        """The pid of this stack's process (matched by command line and PREFECT_API_URL)."""
        for info in _processes():
            joined = " ".join(info.cmdline)
            if not all(part in joined for part in self.marker):
                continue
            environ = _environ(info.pid)
            if environ is None or environ.get("PREFECT_API_URL") != self.api_url:
                continue
            return info.pid
        return None

    def kill(self, with_children: bool) -> list[int]:
        """SIGKILL the process (first, so it reports nothing), then what it started."""
        pid = self.find()
        if pid is None:
            return []
        tree = _descendants(pid) if with_children else []
        killed = [p for p in [pid, *tree] if _kill(p)]
        self.kills += 1
        return killed

    def terminate(self) -> int | None:
        """SIGTERM: the worker stops claiming and drains the runs in hand."""
        pid = self.find()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            self.terms += 1
        return pid

    def restart_with(self, folder: Path, variables: Mapping[str, str], timeout_s: float) -> int:
        """Stop the process (SIGTERM) and wait for the supervisor to start it again with
        `variables` added to its environment; the successor's pid."""
        set_restart_env(folder, self.name, variables)
        old = self.terminate()
        successor = self.wait_for_successor(old, timeout_s)
        if successor is None:
            raise RuntimeError(f"the stack's {self.name} was not started again")
        return successor

    def wait_for_successor(self, old_pid: int | None, timeout_s: float) -> int | None:
        """The pid of the process the supervisor started in its place."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self.find()
            if pid is not None and pid != old_pid:
                return pid
            time.sleep(0.5)
        return None


# --- the run ---------------------------------------------------------------------------


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
        self.sensor = Component("sensor", ["sensors.sqs_sensor"], api)
        self.worker = Component("warm-worker", ["worker", "start", "--type", "warm"], api)

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

    def sensor_ready(self, timeout_s: float) -> float:
        """Wait until the sensor serves /metrics (it polls right after); seconds waited."""
        url = f"http://127.0.0.1:{self.env['SENSOR_METRICS_PORT']}/metrics"
        began = time.monotonic()
        while time.monotonic() - began < timeout_s and not self.stop.is_set():
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                self.stop.wait(0.5)
        return time.monotonic() - began

    def kill_sensor_periodically(self) -> None:
        """Kill the sensor ~`sensor_kill_s` after it is up again: under load its start alone
        can take that long, and a sensor killed before it polls would never work."""
        interval = self.settings.sensor_kill_s
        while not self.stop.is_set():
            started_in = self.sensor_ready(timeout_s=SENSOR_START_TIMEOUT_S)
            uptime = interval * self.rng.uniform(1 - KILL_JITTER, 1 + KILL_JITTER)
            if self.stop.wait(uptime):
                break
            killed = self.sensor.kill(with_children=False)
            self.note("sensor-killed", pids=killed, start_s=round(started_in, 1))
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


def job_ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"c{index:04d}{rng.getrandbits(32):08x}" for index in range(n)]


def backend_jobs(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{env['BACKEND_BASE_URL']}/internal/jobs", timeout=30)
    response.raise_for_status()
    return {job["job_id"]: job for job in response.json()}


def read_all_flow_runs(client: SyncPrefectClient, **filters: Any) -> list[FlowRun]:
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(
            limit=PREFECT_PAGE, offset=len(runs), sort=FlowRunSort.ID_DESC, **filters
        )
        runs.extend(page)
        if len(page) < PREFECT_PAGE:
            return runs


def active_flow_runs(env: dict[str, str]) -> int:
    """Runs still to finish; the crash sweep's next scheduled runs are not waited for."""
    with prefect_client(env) as client:
        flow_filter = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATES))
        )
        runs = read_all_flow_runs(client, flow_run_filter=flow_filter)
    return sum(not (run.auto_scheduled and run.state_type is StateType.SCHEDULED) for run in runs)


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def dead_lettered_jobs(sqs: Any, url: str) -> list[str]:
    """The chaos jobs announced by the messages in the dead-letter queue (peeked, not deleted)."""
    found: dict[str, str] = {}
    for _ in range(DLQ_PEEKS):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=DLQ_PEEK_HIDE_S
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            found[message["MessageId"]] = message["Body"]
    jobs = set()
    for body in found.values():
        try:
            records = json.loads(body).get("Records", [])
        except (ValueError, AttributeError):
            continue
        for record in records:
            key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
            if key.startswith(f"videos/{USER_ID}/"):
                jobs.add(key.rsplit("/", 1)[1].rsplit(".", 1)[0])
    return sorted(jobs)


def is_final(job: dict[str, Any] | None) -> bool:
    return job is not None and job.get("state") in ("DONE", "FAILED")


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
    settle_deadline = time.monotonic() + SETTLE_TIMEOUT_S
    active = -1
    while time.monotonic() < settle_deadline:
        active = active_flow_runs(env)
        depth = queue_depth(sqs, env["SQS_QUEUE_URL"])
        if active == 0 and depth == 0:
            break
        time.sleep(POLL_S)
    return collect(chaos, jobs, duplicated, processing_s, active, s3, sqs)


def count_result_objects(s3: Any, bucket: str) -> tuple[Counter[str], Counter[str]]:
    """Result JSON objects per job, and companion objects by kind."""
    results: Counter[str] = Counter()
    companions: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RESULT_PREFIX):
        for item in page.get("Contents", []):
            name = item["Key"].removeprefix(RESULT_PREFIX)
            suffix = next((s for s in COMPANION_SUFFIXES if name.endswith(s)), None)
            if suffix is not None:
                companions[suffix] += 1
            elif name.endswith(".json"):
                results[name.removesuffix(".json")] += 1
            else:
                companions["other"] += 1
    return results, companions


def flow_runs_per_job(env: dict[str, str]) -> tuple[Counter[str], dict[str, str]]:
    """Flow runs per job, and the state type of each job's (last) run."""
    with prefect_client(env) as client:
        runs = [run for run in read_all_flow_runs(client) if run.name.startswith("job-")]
    states = {
        run.name.removeprefix("job-"): run.state_type.value if run.state_type else "?"
        for run in runs
    }
    return Counter(run.name.removeprefix("job-") for run in runs), states


def collect(
    chaos: Chaos,
    jobs: list[str],
    duplicated: set[str],
    processing_s: float,
    active_runs: int,
    s3: Any,
    sqs: Any,
) -> dict[str, Any]:
    env = chaos.env
    records = backend_jobs(env)
    done = [job for job in jobs if (records.get(job) or {}).get("state") == "DONE"]
    failed = [job for job in jobs if (records.get(job) or {}).get("state") == "FAILED"]
    unfinished = [job for job in jobs if not is_final(records.get(job))]
    duplicates = []
    resent: dict[str, int] = {}
    for job in jobs:
        callbacks = (records.get(job) or {}).get("callbacks", [])
        accepted = [c for c in callbacks if c.get("accepted")]
        if len(accepted) > 1:
            duplicates.append(
                {"job_id": job, "accepted": [c["body"].get("status") for c in accepted]}
            )
        repeats = sum(bool(c.get("duplicate_delivery")) for c in callbacks)
        if repeats:
            resent[job] = repeats
    results, companions = count_result_objects(s3, env["RESULT_BUCKET_NAME"])
    runs, run_states = flow_runs_per_job(env)
    late = [job for job in unfinished if run_states.get(job) in ON_ITS_WAY]
    lost = [job for job in unfinished if job not in late]
    fake_stats = {
        variable: httpx.get(f"{env[variable]}/__admin/stats", timeout=10).json()
        for variable in FAULT_TARGETS
    }
    error_codes = Counter(
        str((records[job].get("final") or {}).get("error_code")) for job in failed
    )
    per_job_results = [results.get(job, 0) for job in jobs]
    dead_lettered = dead_lettered_jobs(sqs, env["SQS_DLQ_URL"])
    settings = chaos.settings
    return {
        "submitted": len(jobs),
        "done": len(done),
        "failed": len(failed),
        "late": len(late),
        "lost": len(lost),
        "duplicate_final_callbacks": len(duplicates),
        "max_result_objects_per_job": max(per_job_results, default=0),
        "result_objects_counted": "results/chaos/<job>.json only; companions counted apart",
        "jobs_without_result_object": sum(count == 0 for count in per_job_results),
        "companion_objects": dict(companions),
        "max_flow_runs_per_job": max((runs.get(job, 0) for job in jobs), default=0),
        "lost_by_run_state": dict(Counter(run_states.get(job, "no flow run") for job in lost)),
        "lost_dead_lettered": sorted(set(lost) & set(dead_lettered)),
        "dead_lettered_jobs_without_run": [job for job in dead_lettered if not runs.get(job)],
        "jobs_with_resent_callbacks": len(resent),
        "failed_error_codes": dict(error_codes),
        "wall_time_s": round(processing_s, 1),
        "jobs_per_min": round(len(done) / (processing_s / 60), 2) if processing_s else None,
        "target_met": (
            not failed and not late and not lost and not duplicates and set(per_job_results) == {1}
        ),
        "chaos": {
            "duplicate_events_sent": chaos.duplicates_sent,
            "jobs_duplicated": len(duplicated),
            "sensor_kills": chaos.sensor.kills,
            "worker_kills": chaos.worker.kills,
            "worker_terms": chaos.worker.terms,
            "faults_injected": {
                variable: chaos.faults_injected[env[variable]] for variable in FAULT_TARGETS
            },
            "fake_requests": {
                variable: {
                    key: fake_stats[variable].get(key)
                    for key in ("requests", "faults_applied", "by_status")
                }
                for variable in FAULT_TARGETS
            },
            "flow_runs_still_active": active_runs,
            "queue_depth": queue_depth(sqs, env["SQS_QUEUE_URL"]),
            "dlq_depth": queue_depth(sqs, env["SQS_DLQ_URL"]),
        },
        "settings": {
            "n": settings.n,
            "timeout_s": settings.timeout_s,
            "upload_s": settings.upload_s,
            "duplicate_ratio": settings.duplicate_ratio,
            "fault_ratio": settings.fault_ratio,
            "sensor_kill_s": settings.sensor_kill_s,
            "worker_kills": settings.worker_kills,
            "worker_terms": settings.worker_terms,
            "seed": settings.seed,
            "video_seconds": VIDEO_SECONDS,
            "cpus": os.cpu_count(),
        },
        "problems": {
            "late": {job: run_states.get(job) for job in late[:50]},
            "lost": lost[:50],
            "failed": failed[:50],
            "duplicates": duplicates[:50],
            "result_objects_not_one": [
                {"job_id": job, "objects": results.get(job, 0)}
                for job in jobs
                if results.get(job, 0) != 1
            ][:50],
        },
    }


# --- stack lifetime --------------------------------------------------------------------


def kill_leftovers(api_url: str) -> list[int]:
    """SIGKILL what still runs for this stack (flow runs the killed workers left behind)."""
    own = os.getpid()
    leftovers = [
        info.pid
        for info in _processes()
        if info.pid != own and (_environ(info.pid) or {}).get("PREFECT_API_URL") == api_url
    ]
    return [pid for pid in leftovers if _kill(pid)]


def print_summary(report: dict[str, Any]) -> None:
    keys = (
        "submitted",
        "done",
        "failed",
        "late",
        "lost",
        "duplicate_final_callbacks",
        "max_result_objects_per_job",
        "max_flow_runs_per_job",
        "wall_time_s",
        "jobs_per_min",
        "target_met",
    )
    width = max(len(key) for key in keys)
    for key in keys:
        print(f"  {key:<{width}}  {report[key]}")
    print(json.dumps(report["chaos"], indent=2))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
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
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--keep", action="store_true", help="keep the stack folder (logs)")
    add_database_argument(parser)
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
    folder = Path(tempfile.mkdtemp(prefix="chaos-stack-"))
    log(f"starting the local stack in {folder}")
    began = time.monotonic()
    chaos: Chaos | None = None
    report: dict[str, Any] | None = None
    try:
        started = stack_command("up", folder, database=args.db)
        if started.returncode != 0:
            print(started.stdout, started.stderr, file=sys.stderr)
            raise RuntimeError("the local stack failed to start")
        env = read_stack_env(folder)
        stack_up_s = time.monotonic() - began
        log(f"stack up in {stack_up_s:.0f} s; submitting {settings.n} jobs")
        chaos = Chaos(settings, folder, env, random.Random(settings.seed))
        report = run_chaos(chaos, job_ids(settings.n, settings.seed))
        report["database"] = env["PREFECT_DB"]
        report["stack_start_s"] = round(stack_up_s, 1)
        report["total_s"] = round(time.monotonic() - began, 1)
    finally:
        if chaos is not None:
            chaos.stop.set()
        stack_command("down", folder)
        if chaos is not None:
            left = kill_leftovers(chaos.env["PREFECT_API_URL"])
            if left:
                log(f"killed {len(left)} leftover processes of the stack: {left}")
        keep = args.keep or report is None or not report["target_met"]
        if keep:
            log(f"stack folder kept: {folder} (logs in {folder / 'logs'})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report["stack_folder"] = str(folder) if keep else None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"chaos test, N={settings.n}, {report['database']} (written to {args.output}):")
    print_summary(report)
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

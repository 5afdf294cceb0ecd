"""Throughput benchmark: N one-minute videos through the local stack vs a sequential worker.

Run: ``python -m bench.throughput [--n 100] [--sequential-n 10] [--modes ...]``
(``make bench-throughput``, ``N_THROUGHPUT=...``). It starts its own local stack
(``--engines fake``; its Prefect server on ``--db``, default ``$PREFECT_DB`` or SQLite, as
``database`` in the report) in a temporary folder and gives the fakes the latency model
CLOVA CSR ``0.5 s + 0.15 s × audio seconds`` per chunk and Claude
``2 s + 15 ms × output tokens``; the engine blocks get the production timeouts (60 s,
120 s) instead of the fake mode's 3 s, through ``python -m blocks.bootstrap`` (which
also sets the global concurrency limits, ``--csr-concurrency``/``--claude-concurrency``).

1. **Sequential** (``--sequential-n``, 10): ``bench.sequential_worker``, a seed-style
   worker (one message at a time, one process, same stages, engines and blocks), reads
   its own queue, fed by the S3 notifications of its own bucket (the sensor sees
   neither). Its rate is the baseline: ``sequential_jobs_per_min``.
2. **Concurrent**, once per ``--modes`` entry: N copies of one 60 s tone video are
   uploaded at once (8 upload threads) as ``videos/throughput-<mode>/<job>.mp4``; the
   stack's S3 notification → SQS → sensor → flow runs of
   ``process-video/process-video-local`` → DONE callbacks. Modes:

   - ``process``: the deployed set-up, Prefect's process worker (per run one process,
     ``python -m prefect.runner._workspace_supervisor``, which runs the engine);
   - ``process-engine``: the same worker with the job variable
     ``command: python -m prefect.engine``, Prefect's other process start (per run one
     ``python -m prefect.engine`` process, no workspace preparation);
   - ``thread``: the stack's worker is stopped and ``bench.inprocess_runner`` runs the
     deployment's flow runs with Prefect's engine in threads of one long-lived process.

``wall_s`` runs from the first upload to the last final callback the backend received
(its own ``received_at``); ``jobs_per_min = done / wall minutes``.

**Orchestration CPU** (``bench.proc_cpu``): the CPU seconds, from /proc, of the Prefect
server, the SQS sensor and the worker (``process*``) or the in-process runner
(``thread``), each with every process it started (the flow-run processes,
reaped or alive), from the first upload until the phase's runs are all final and their
processes gone, minus ffmpeg/ffprobe (the media work). It includes the stage code that
runs inside the flow runs (S3 and HTTP clients, JSON): the sequential worker's own CPU
per job (``sequential.cpu_s_per_job``) shows that part, which any set-up pays. Not
counted: moto, the fakes, the reference backend and this bench. ``idle_cpu_s_per_s``
is what the same processes spend idle (measured for ``IDLE_S`` before the upload; not
subtracted). ``processes_started`` counts, per role and command, the new processes the
sampler saw (every 0.25 s: one shorter than that may be missed).

**Limits** (all in ``limits``): the engines' global concurrency limits (CSR 8, Claude 4
by default), the deployment's concurrency limit (16, ENQUEUE) and the work pool's (none).
``engine_bound_jobs_per_min`` is what the engine limits allow with the engine seconds
per job the sequential phase measured. A run the server refuses a deployment slot is
offered again ``deployment_slot_wait_s`` (30 s) later: the process worker submits every
scheduled run it sees, so with N above the deployment limit it collects refusals
(``deployment_slot_refusals``), while the in-process runner claims only as many runs as
it has free threads. Per mode, ``engine_slot_utilisation`` is the modelled engine seconds
over what the limits allowed during the wall time: near 1 the engine limits bound the
throughput, well below 1 something else does. ``--deployment-concurrency``,
``--work-pool-concurrency``, ``--slot-wait-seconds``, ``--csr-concurrency`` and
``--claude-concurrency`` change the limits for the run.

Targets: ``speedup_vs_sequential ≥ 10`` and ``orchestration_cpu_s_per_job ≤ 1``. The
top-level figures are those of the first mode (in ``--modes`` order) that meets both,
else of the mode that comes closest; every mode's figures are under ``modes``. The
results go to ``bench/results/throughput.json`` and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolUpdate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from bench.chaos import (
    Component,
    active_flow_runs,
    backend_jobs,
    is_final,
    job_ids,
    kill_leftovers,
    queue_depth,
    read_all_flow_runs,
)
from bench.latency_model import ISSUE_MODEL, configure_fakes
from bench.proc_cpu import CpuSampler, RoleCpu, all_stats, tree
from local_stack.database import POSTGRES, add_database_argument, postgres_server_pid
from local_stack.sample_video import make_tone_video
from local_stack.stack import (
    DEPLOYMENT,
    LOCAL_REGION,
    REPO_ROOT,
    WORK_POOL,
    aws_client,
    prefect_client,
    read_stack_env,
    stack_command,
)
from video_processor.config import LlmEngineName, SttEngineName, concurrency_limit_name

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results" / "throughput.json"
VIDEO_SECONDS = 60.0
MODEL = ISSUE_MODEL  # CSR 0.5 s + 0.15 s × chunk seconds, Claude 2 s + 15 ms × output tokens
# The production defaults of the settings; the stack's fake mode sets 3 s, shorter than
# one modelled 55 s CSR chunk (8.75 s).
ENGINE_TIMEOUTS = {"CLOVA_TIMEOUT_SECONDS": "60", "CLAUDE_TIMEOUT_SECONDS": "120"}
CSR_LIMIT = concurrency_limit_name("stt", SttEngineName.CLOVA_CSR)
CLAUDE_LIMIT = concurrency_limit_name("llm", LlmEngineName.CLAUDE)
TARGET_SPEEDUP = 10.0
TARGET_CPU_S_PER_JOB = 1.0
MODES = ("process", "process-engine", "thread")
SEQUENTIAL_BUCKET = "throughput-sequential-bucket"
SEQUENTIAL_QUEUE = "throughput-sequential"
SEQUENTIAL_USER = "throughput-seq"
UPLOAD_THREADS = 8
IDLE_S = 10.0
POLL_S = 1.0
READY_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
SLOT_WAIT_VARIABLE = "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"
AWAITING_SLOT = "AwaitingConcurrencySlot"
CPU_ACCOUNTING = (
    "CPU seconds from /proc (utime+stime of live processes plus cutime+cstime of reaped "
    "children) of the Prefect server (and of its PostgreSQL when the stack runs one), the "
    "SQS sensor and the worker (process modes) or "
    "the in-process runner (thread mode), with every process they started, from the "
    "first upload until the phase's runs are final and their processes gone; minus "
    "ffmpeg/ffprobe. Includes the stage code inside flow runs; excludes moto, the fakes, "
    "the backend and the bench."
)


def log(message: str) -> None:
    print(f"[throughput {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Settings:
    n: int
    sequential_n: int
    modes: list[str]
    timeout_s: float
    csr_concurrency: int | None
    claude_concurrency: int | None
    deployment_concurrency: int | None
    work_pool_concurrency: int | None
    threads: int | None
    seed: int


# --- pure parts: figures of a phase and the report -------------------------------------


def per_minute(jobs: int, seconds: float | None) -> float | None:
    return round(jobs / (seconds / 60), 2) if seconds else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


def wall_seconds(started_at: datetime, records: Iterable[dict[str, Any]]) -> float | None:
    """From the first upload to the last accepted final callback the backend received."""
    last = None
    for record in records:
        for callback in record.get("callbacks", []):
            if callback.get("accepted"):
                received = datetime.fromisoformat(callback["received_at"])
                last = received if last is None or received > last else last
    return (last - started_at).total_seconds() if last else None


def cpu_figures(cpu: dict[str, RoleCpu], jobs: int) -> dict[str, Any]:
    orchestration = sum(role.orchestration_s for role in cpu.values())
    return {
        "orchestration_cpu_s": round(orchestration, 2),
        "orchestration_cpu_s_per_job": round(orchestration / jobs, 3) if jobs else None,
        "media_cpu_s": round(sum(role.media_s for role in cpu.values()), 2),
        "cpu_by_role": {
            name: {
                "total_s": round(role.total_s, 2),
                "media_s": round(role.media_s, 2),
                "orchestration_s": round(role.orchestration_s, 2),
            }
            for name, role in cpu.items()
        },
    }


def meets_targets(mode: dict[str, Any]) -> dict[str, bool]:
    speedup = mode.get("speedup_vs_sequential")
    cpu = mode.get("orchestration_cpu_s_per_job")
    return {
        "speedup": speedup is not None and speedup >= TARGET_SPEEDUP and not mode.get("lost"),
        "cpu": cpu is not None and cpu <= TARGET_CPU_S_PER_JOB,
    }


def pick_headline(modes: dict[str, dict[str, Any]]) -> str:
    """The first mode that meets both targets, else the one closest to them."""
    for name, mode in modes.items():
        if all(meets_targets(mode).values()):
            return name

    def closeness(name: str) -> tuple[int, float]:
        met = sum(meets_targets(modes[name]).values())
        return met, modes[name].get("speedup_vs_sequential") or 0.0

    return max(modes, key=closeness)


def build_report(
    sequential: dict[str, Any],
    modes: dict[str, dict[str, Any]],
    limits: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report: the headline mode's figures on top, every mode under `modes`."""
    for mode in modes.values():
        mode["speedup_vs_sequential"] = ratio(mode["jobs_per_min"], sequential["jobs_per_min"])
        mode["targets_met"] = meets_targets(mode)
    headline = pick_headline(modes)
    chosen = modes[headline]
    return {
        "mode": headline,
        "n": chosen["n"],
        "jobs_per_min": chosen["jobs_per_min"],
        "sequential_jobs_per_min": sequential["jobs_per_min"],
        "speedup_vs_sequential": chosen["speedup_vs_sequential"],
        "orchestration_cpu_s_per_job": chosen["orchestration_cpu_s_per_job"],
        "target": {
            "speedup_vs_sequential_min": TARGET_SPEEDUP,
            "orchestration_cpu_s_per_job_max": TARGET_CPU_S_PER_JOB,
        },
        "target_met": all(chosen["targets_met"].values()),
        "limits": limits,
        "latency_model": MODEL.to_json(),
        "video_seconds": VIDEO_SECONDS,
        "cpu_counted": CPU_ACCOUNTING,
        "sequential": sequential,
        "modes": modes,
        **extra,
    }


def print_table(report: dict[str, Any]) -> None:
    sequential = report["sequential"]
    rows: list[list[Any]] = [
        [
            "sequential",
            sequential["n"],
            sequential["done"],
            sequential["wall_s"],
            sequential["jobs_per_min"],
            1.0,
            sequential.get("cpu_s_per_job"),
            "",
        ]
    ]
    for name, mode in report["modes"].items():
        met = mode["targets_met"]
        verdict = "yes" if all(met.values()) else ", ".join(k for k, ok in met.items() if not ok)
        rows.append(
            [
                name,
                mode["n"],
                mode["done"],
                mode["wall_s"],
                mode["jobs_per_min"],
                mode["speedup_vs_sequential"],
                mode["orchestration_cpu_s_per_job"],
                verdict,
            ]
        )
    header = ("mode", "n", "done", "wall s", "jobs/min", "× seq", "orch CPU-s/job", "target")
    table = [header, *[tuple("-" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"  headline: {report['mode']} — {report['jobs_per_min']} jobs/min, "
        f"{report['speedup_vs_sequential']}× sequential, "
        f"{report['orchestration_cpu_s_per_job']} orchestration CPU-s/job; "
        f"target met: {report['target_met']}"
    )
    print("  (sequential row: CPU-s/job is the worker's own CPU without ffmpeg, no Prefect)")


# --- the stack -------------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    folder: Path
    env: dict[str, str]
    video: Path = field(init=False)
    s3: Any = field(init=False)
    sqs: Any = field(init=False)
    client: SyncPrefectClient = field(init=False)
    deployment_id: UUID = field(init=False)
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.s3, self.sqs = aws_client(self.env, "s3"), aws_client(self.env, "sqs")
        self.client = prefect_client(self.env)
        self.client.__enter__()
        self.deployment_id = self.client.read_deployment_by_name(DEPLOYMENT).id
        self.video = make_tone_video(self.folder / "clip-60s.mp4", seconds=VIDEO_SECONDS)

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def component(self, name: str, marker: list[str]) -> Component:
        return Component(name, marker, self.env["PREFECT_API_URL"])

    def close(self) -> None:
        for process in self.children:
            stop_process(process)
        self.client.__exit__(None, None, None)

    # set-up ---------------------------------------------------------------------------

    def configure(self) -> dict[str, Any]:
        """Engine timeouts and global limits (bootstrap), deployment limit; the limits used."""
        overrides = dict(ENGINE_TIMEOUTS)
        if self.settings.csr_concurrency:
            overrides["CLOVA_CSR_CONCURRENCY"] = str(self.settings.csr_concurrency)
        if self.settings.claude_concurrency:
            overrides["CLAUDE_CONCURRENCY"] = str(self.settings.claude_concurrency)
        with (self.logs / "bootstrap.log").open("ab") as output:
            subprocess.run(
                [sys.executable, "-m", "blocks.bootstrap"],
                cwd=REPO_ROOT,
                env={**os.environ, **self.env, **overrides},
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
            )
        if self.settings.deployment_concurrency:
            self.client.update_deployment(
                self.deployment_id,
                DeploymentUpdate(concurrency_limit=self.settings.deployment_concurrency),
            )
        if self.settings.work_pool_concurrency:
            self.client.update_work_pool(
                WORK_POOL, WorkPoolUpdate(concurrency_limit=self.settings.work_pool_concurrency)
            )
        return self.limits()

    def limits(self) -> dict[str, Any]:
        deployment = self.client.read_deployment(self.deployment_id)
        limit = deployment.global_concurrency_limit
        pool = self.client.read_work_pool(WORK_POOL)
        return {
            CSR_LIMIT: self.client.read_global_concurrency_limit_by_name(CSR_LIMIT).limit,
            CLAUDE_LIMIT: self.client.read_global_concurrency_limit_by_name(CLAUDE_LIMIT).limit,
            "deployment_concurrency": limit.limit if limit else None,
            "deployment_collision_strategy": (
                deployment.concurrency_options.collision_strategy.value
                if deployment.concurrency_options
                else None
            ),
            "work_pool_concurrency": pool.concurrency_limit,
            # A run refused a deployment slot is retried this much later (server setting).
            "deployment_slot_wait_s": float(os.environ.get(SLOT_WAIT_VARIABLE, 30.0)),
            "engine_timeouts_s": {key: float(value) for key, value in ENGINE_TIMEOUTS.items()},
        }

    def fake_stats(self) -> dict[str, Any]:
        keep = (
            "requests",
            "max_in_flight",
            "by_status",
            "audio_seconds",
            "messages",
            "output_tokens",
        )
        stats = {}
        for name, variable in (("clova", "FAKE_CLOVA_URL"), ("anthropic", "FAKE_ANTHROPIC_URL")):
            found = httpx.get(f"{self.env[variable]}/__admin/stats", timeout=10).json()
            stats[name] = {key: found[key] for key in keep if key in found}
        return stats

    def start_process(self, name: str, command: list[str], env: dict[str, str]) -> Any:
        """Start a helper with its output in logs/<name>.log; wait for its `ready` line."""
        path = self.logs / f"{name}.log"
        with path.open("ab") as output:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.children.append(process)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {path}")
            if any(line.startswith("ready") for line in path.read_text().splitlines()):
                return process
            time.sleep(0.5)
        raise RuntimeError(f"{name} not ready within {READY_TIMEOUT_S:.0f} s; see {path}")

    def upload_all(self, bucket: str, user: str, jobs: list[str]) -> datetime:
        """Upload every copy at once (a few threads); returns when the first one started."""
        started_at = datetime.now(UTC)
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(
                pool.map(
                    lambda job: self.s3.upload_file(
                        str(self.video), bucket, f"videos/{user}/{job}.mp4"
                    ),
                    jobs,
                )
            )
        return started_at

    def wait_final(self, jobs: list[str], label: str) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + self.settings.timeout_s
        last_report = time.monotonic()
        while True:
            records = backend_jobs(self.env)
            finished = sum(is_final(records.get(job)) for job in jobs)
            if finished == len(jobs) or time.monotonic() > deadline:
                return {job: records[job] for job in jobs if job in records}
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                log(f"{label}: {finished}/{len(jobs)} final")
            time.sleep(POLL_S)

    def settle(self, worker: Component | None) -> bool:
        """No run active, the queue empty, and (process modes) no flow-run process left."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            busy = active_flow_runs(self.env) or queue_depth(self.sqs, self.env["SQS_QUEUE_URL"])
            pid = worker.find() if worker else None
            if not busy and (pid is None or len(tree(pid, all_stats())) == 1):
                return True
            time.sleep(POLL_S)
        return False

    def flow_run_summary(self, user: str) -> dict[str, Any]:
        runs = read_all_flow_runs(
            self.client,
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"user:{user}"])),
        )
        slot_waits = sum(
            state.name == AWAITING_SLOT
            for run in runs
            for state in self.client.read_flow_run_states(run.id)
        )
        return {
            "flow_runs": len(runs),
            "states": dict(Counter(run.state_name or "?" for run in runs)),
            "median_run_s": median_run_seconds(runs),
            # Times a run was refused a deployment slot and rescheduled (slot wait later).
            "deployment_slot_refusals": slot_waits,
        }

    # the sequential baseline ------------------------------------------------------------

    def sequential_queue(self) -> str:
        """Its own bucket and queue (the sensor watches neither), wired like the stack's."""
        self.s3.create_bucket(
            Bucket=SEQUENTIAL_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": LOCAL_REGION},
        )
        url: str = self.sqs.create_queue(
            QueueName=SEQUENTIAL_QUEUE, Attributes={"VisibilityTimeout": "300"}
        )["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket=SEQUENTIAL_BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "videos/"}]}
                        },
                    }
                ]
            },
        )
        self.sqs.purge_queue(QueueUrl=url)  # the notification's s3:TestEvent
        return url

    def run_sequential(self) -> dict[str, Any]:
        n = self.settings.sequential_n
        url = self.sequential_queue()
        configure_fakes(self.env, MODEL)  # stats reset too
        process = self.start_process(
            "sequential-worker",
            [sys.executable, "-m", "bench.sequential_worker", "--queue-url", url],
            {**os.environ, **self.env},
        )
        jobs = job_ids(n, self.settings.seed)
        sampler = CpuSampler({"sequential-worker": process.pid})
        sampler.start()
        log(f"sequential: {n} jobs, one at a time")
        started_at = self.upload_all(SEQUENTIAL_BUCKET, SEQUENTIAL_USER, jobs)
        records = self.wait_final(jobs, "sequential")
        time.sleep(2 * POLL_S)  # the work files are removed after the callback
        cpu = sampler.stop()["sequential-worker"]  # while it lives: its reaped ffmpeg count
        stop_process(process)
        stats = self.fake_stats()
        done = sum(record.get("state") == "DONE" for record in records.values())
        wall = wall_seconds(started_at, records.values())
        return {
            "n": n,
            "done": done,
            "failed": sum(record.get("state") == "FAILED" for record in records.values()),
            "lost": n - sum(is_final(record) for record in records.values()),
            "wall_s": round(wall, 1) if wall else None,
            "jobs_per_min": per_minute(done, wall),
            "cpu_s_per_job": round(cpu.orchestration_s / done, 3) if done else None,
            "media_cpu_s_per_job": round(cpu.media_s / done, 3) if done else None,
            "engine_seconds_per_job": engine_seconds_per_job(stats, done),
            "fakes": stats,
        }

    # a concurrent phase -----------------------------------------------------------------

    def run_mode(self, mode: str, index: int) -> dict[str, Any]:
        n = self.settings.n
        user = f"throughput-{mode}"
        jobs = job_ids(n, self.settings.seed + 1 + index)
        server = self.component("prefect-server", ["server", "start"])
        sensor = self.component("sensor", ["sensors.sqs_sensor"])
        worker = self.component("worker", ["worker", "start", "--pool"])
        roots = {"prefect-server": server.find(), "sensor": sensor.find()}
        if self.env["PREFECT_DB"] == POSTGRES:  # the server's database work happens there
            roots["postgres"] = postgres_server_pid(self.folder)
        restore: Callable[[], None] = lambda: None  # noqa: E731
        runner_threads = None
        if mode == "process":
            roots["worker"] = worker.find()
        elif mode == "process-engine":
            roots["worker"] = worker.find()
            restore = self.set_engine_command()
        elif mode == "thread":
            runner, runner_threads = self.start_runner(worker)
            roots["runner"] = runner.pid
        else:
            raise ValueError(f"unknown mode {mode!r}")
        missing = [name for name, pid in roots.items() if pid is None]
        if missing:
            raise RuntimeError(f"{mode}: processes not found in /proc: {missing}")
        pids = {name: pid for name, pid in roots.items() if pid is not None}
        try:
            configure_fakes(self.env, MODEL)  # stats reset too
            idle = CpuSampler(pids)
            idle.start()
            time.sleep(IDLE_S)
            idle_cpu = sum(role.total_s for role in idle.stop().values()) / IDLE_S
            sampler = CpuSampler(pids)
            sampler.start()
            log(f"{mode}: uploading {n} one-minute videos at once")
            began = time.monotonic()
            started_at = self.upload_all(self.env["VIDEO_BUCKET_NAME"], user, jobs)
            records = self.wait_final(jobs, mode)
            settled = self.settle(worker if mode != "thread" else None)
            cpu = sampler.stop()
            cpu_window = time.monotonic() - began
        finally:
            restore()
        done = sum(record.get("state") == "DONE" for record in records.values())
        wall = wall_seconds(started_at, records.values())
        result = {
            "n": n,
            "done": done,
            "failed": sum(record.get("state") == "FAILED" for record in records.values()),
            "lost": n - sum(is_final(record) for record in records.values()),
            "wall_s": round(wall, 1) if wall else None,
            "jobs_per_min": per_minute(done, wall),
            **cpu_figures(cpu, done),
            "cpu_window_s": round(cpu_window, 1),
            "processes_started": sampler.started(),
            "cpu_samples": sampler.samples,
            "idle_cpu_s_per_s": round(idle_cpu, 3),
            "settled": settled,
            "runner_threads": runner_threads,
            **self.flow_run_summary(user),
            "fakes": self.fake_stats(),
        }
        result["engine_slot_utilisation"] = slot_utilisation(self.limits(), result)
        log(
            f"{mode}: {done}/{n} done in {result['wall_s']} s, {result['jobs_per_min']} jobs/min, "
            f"{result['orchestration_cpu_s_per_job']} orchestration CPU-s/job"
        )
        return result

    def set_engine_command(self) -> Callable[[], None]:
        """Give the deployment the job variable `command` (one engine process per run)."""
        deployment = self.client.read_deployment(self.deployment_id)
        before = dict(deployment.job_variables or {})
        command = f"{sys.executable} -m prefect.engine"
        self.client.update_deployment(
            self.deployment_id, DeploymentUpdate(job_variables={**before, "command": command})
        )

        def restore() -> None:
            self.client.update_deployment(
                self.deployment_id, DeploymentUpdate(job_variables=before)
            )

        return restore

    def start_runner(self, worker: Component) -> tuple[subprocess.Popen[bytes], int | None]:
        """Stop the stack's process worker; start the in-process runner in its place."""
        pid = worker.find()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while worker.find() is not None and time.monotonic() < deadline:
                time.sleep(0.5)
        deployment = self.client.read_deployment(self.deployment_id)
        job_env = (deployment.job_variables or {}).get("env") or {}
        command = [
            sys.executable,
            *("-m", "bench.inprocess_runner", "--pool", WORK_POOL, "--deployment", DEPLOYMENT),
        ]
        if self.settings.threads:
            command += ["--threads", str(self.settings.threads)]
        env = {**os.environ, **self.env, **{key: str(value) for key, value in job_env.items()}}
        process = self.start_process("inprocess-runner", command, env)
        limit = deployment.global_concurrency_limit
        return process, self.settings.threads or (limit.limit if limit else None)


def median_run_seconds(runs: list[FlowRun]) -> float | None:
    durations = [
        (run.end_time - run.start_time).total_seconds()
        for run in runs
        if run.start_time and run.end_time
    ]
    return round(statistics.median(durations), 1) if durations else None


def engine_seconds_per_job(stats: dict[str, Any], jobs: int) -> dict[str, float] | None:
    """Modelled engine seconds per job (what one job holds of each concurrency limit)."""
    clova, claude = stats.get("clova", {}), stats.get("anthropic", {})
    if not jobs or not clova.get("requests") or not claude.get("messages"):
        return None
    csr = clova["requests"] * MODEL.csr_base_s + clova.get("audio_seconds", 0.0) * (
        MODEL.csr_per_audio_s
    )
    llm = MODEL.claude_s(claude.get("output_tokens", 0), calls=claude["messages"])
    return {"clova_csr": round(csr / jobs, 2), "claude": round(llm / jobs, 2)}


def slot_utilisation(limits: dict[str, Any], mode: dict[str, Any]) -> dict[str, float] | None:
    """Modelled engine seconds over slot seconds available during the wall time (1 = full)."""
    seconds = engine_seconds_per_job(mode["fakes"], 1)
    if not seconds or not mode["wall_s"]:
        return None
    return {
        "clova_csr": round(seconds["clova_csr"] / (limits[CSR_LIMIT] * mode["wall_s"]), 2),
        "claude": round(seconds["claude"] / (limits[CLAUDE_LIMIT] * mode["wall_s"]), 2),
    }


def engine_bound(limits: dict[str, Any], seconds: dict[str, float] | None) -> float | None:
    """The most jobs per minute the engines' global concurrency limits allow."""
    if not seconds:
        return None
    csr: float = limits[CSR_LIMIT] * 60 / seconds["clova_csr"]
    claude: float = limits[CLAUDE_LIMIT] * 60 / seconds["claude"]
    return round(min(csr, claude), 1)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def recommendation(report: dict[str, Any]) -> str:
    modes = report["modes"]
    parts = [
        f"{name}: {mode['jobs_per_min']} jobs/min ({mode['speedup_vs_sequential']}× sequential), "
        f"{mode['orchestration_cpu_s_per_job']} orchestration CPU-s/job"
        for name, mode in modes.items()
    ]
    verdict = (
        f"{report['mode']} meets both targets"
        if report["target_met"]
        else f"no mode meets both targets; {report['mode']} comes closest"
    )
    return f"{verdict}. " + "; ".join(parts) + "."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=100, help="videos per concurrent mode (100)")
    parser.add_argument("--sequential-n", type=int, default=10, help="jobs of the baseline (10)")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated, of {', '.join(MODES)} (run in that order)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per phase")
    parser.add_argument("--csr-concurrency", type=int, default=None, help="global limit")
    parser.add_argument("--claude-concurrency", type=int, default=None, help="global limit")
    parser.add_argument("--deployment-concurrency", type=int, default=None)
    parser.add_argument(
        "--work-pool-concurrency", type=int, default=None, help="runs the pool hands out at once"
    )
    parser.add_argument(
        "--slot-wait-seconds",
        type=float,
        default=None,
        help=f"server's retry delay for a refused deployment slot ({SLOT_WAIT_VARIABLE}; 30)",
    )
    parser.add_argument("--threads", type=int, default=None, help="in-process runner threads")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--keep", action="store_true", help="keep the stack folder (logs)")
    add_database_argument(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    chosen = {mode.strip() for mode in args.modes.split(",") if mode.strip()}
    modes = [mode for mode in MODES if mode in chosen]  # `thread` stops the worker: last
    unknown = sorted(chosen - set(MODES))
    if unknown or not modes:
        parser.error(f"--modes: unknown {unknown}; choose from {', '.join(MODES)}")
    if args.n < 1 or args.sequential_n < 1:
        parser.error("--n and --sequential-n must be at least 1")
    settings = Settings(
        n=args.n,
        sequential_n=args.sequential_n,
        modes=modes,
        timeout_s=args.timeout or 300.0 + 10.0 * max(args.n, 2 * args.sequential_n),
        csr_concurrency=args.csr_concurrency,
        claude_concurrency=args.claude_concurrency,
        deployment_concurrency=args.deployment_concurrency,
        work_pool_concurrency=args.work_pool_concurrency,
        threads=args.threads,
        seed=args.seed,
    )
    if args.slot_wait_seconds is not None:  # the stack's Prefect server inherits it
        os.environ[SLOT_WAIT_VARIABLE] = str(args.slot_wait_seconds)
    folder = Path(tempfile.mkdtemp(prefix="throughput-stack-"))
    log(f"starting the local stack in {folder}")
    began = time.monotonic()
    bench: Bench | None = None
    report: dict[str, Any] | None = None
    api_url: str | None = None
    try:
        started = stack_command("up", folder, database=args.db)
        if started.returncode != 0:
            print(started.stdout, started.stderr, file=sys.stderr)
            raise RuntimeError("the local stack failed to start")
        env = read_stack_env(folder)
        api_url = env["PREFECT_API_URL"]
        stack_up_s = time.monotonic() - began
        bench = Bench(settings, folder, env)
        limits = bench.configure()
        log(f"stack up in {stack_up_s:.0f} s; limits {limits}")
        sequential = bench.run_sequential()
        log(f"sequential: {sequential['jobs_per_min']} jobs/min")
        limits["engine_bound_jobs_per_min"] = engine_bound(
            limits, sequential["engine_seconds_per_job"]
        )
        results = {mode: bench.run_mode(mode, index) for index, mode in enumerate(modes)}
        report = build_report(
            sequential,
            results,
            limits,
            {
                "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
                "database": env["PREFECT_DB"],
                "stack_start_s": round(stack_up_s, 1),
                "total_s": round(time.monotonic() - began, 1),
            },
        )
        report["recommendation"] = recommendation(report)
    finally:
        if bench is not None:
            bench.close()
        stack_command("down", folder)
        if api_url is not None:
            left = kill_leftovers(api_url)
            if left:
                log(f"killed {len(left)} leftover processes of the stack: {left}")
        keep = (
            args.keep
            or report is None
            or not all(mode["done"] == mode["n"] for mode in report["modes"].values())
        )
        if keep:
            log(f"stack folder kept: {folder} (logs in {folder / 'logs'})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report["stack_folder"] = str(folder) if keep else None
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"throughput, N={settings.n}, {report['database']} (written to {args.output}):")
    print_table(report)
    print(f"  {report['recommendation']}")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

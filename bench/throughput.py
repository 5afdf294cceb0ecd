"""Throughput benchmark: N one-minute videos through the local stack vs a sequential worker.

Run: ``python -m bench.throughput [--n 100] [--sequential-n 10] [--modes warm,...]
[--db postgres,sqlite]`` (``make bench-throughput``, ``N_THROUGHPUT=...``). For each
database of ``--db`` in turn (default PostgreSQL, the headline, then SQLite, under
``other_databases``) it starts its own local stack (``--engines fake``, its Prefect server
on that database, ``database`` in the report) in a temporary folder and gives the fakes
the latency model
CLOVA CSR ``0.5 s + 0.15 s × audio seconds`` per chunk and Claude
``2 s + 15 ms × output tokens``; the engine blocks get the production timeouts (60 s,
120 s) instead of the fake mode's 3 s, through ``python -m operations.bootstrap`` (which
also sets the global concurrency limits, ``--csr-concurrency``/``--claude-concurrency``).

1. **Sequential** (``--sequential-n``, 10): ``bench.sequential_worker``, a seed-style
   worker (one message at a time, one process, same stages, engines and blocks), reads
   its own queue, fed by the S3 notifications of its own bucket (the sensor sees
   neither). Its rate is the baseline.
2. **Concurrent**, once per ``--modes`` entry (default ``warm``): N copies of one 60 s
   tone video are uploaded at once (8 upload threads) as
   ``videos/throughput-<mode>/<job>.mp4``; the stack's S3 notification → SQS → sensor →
   flow runs → DONE callbacks. Modes:

   - ``warm``: the deployed set-up, the sensor routing every small upload to
     ``process-video/process-video-warm``, run by the warm worker (``workers.warm``: flow
     runs in threads of one long-lived process);
   - ``process``: the sensor restarted with ``ROUTE_MAX_WARM_BYTES=0``, so every run goes
     to the isolated deployment ``process-video/process-video-local``: Prefect's process
     worker (per run one process, ``python -m prefect.runner._workspace_supervisor``,
     which runs the engine);
   - ``process-engine``: the same with the job variable ``command: python -m
     prefect.engine``, Prefect's other process start (one engine process per run, no
     workspace preparation).

**Rates.** ``wall_s`` runs from the first upload to the last final callback the backend
received (its own ``received_at``); ``jobs_per_min = done / wall minutes`` is the
whole-batch rate, which includes the ramp-up (dispatch of the first runs) and the tail
(the last few runs, alone). ``sustained_jobs_per_min`` counts the completions between
the 10th and the 90th percentile completion over the time between them: the rate the
set-up keeps up while it is loaded. ``speedup_vs_sequential`` is the sustained rate over
the sequential worker's sustained rate (the same figure of its own run);
``speedup_whole_batch`` is the whole-batch rates' ratio.

**Orchestration CPU** (``bench.proc_cpu``): the CPU seconds, from /proc, of the Prefect
server, the SQS sensor and the worker that runs the mode's flow runs, each with every
process it started (the flow-run processes, reaped or alive), from the first upload until
the phase's runs are all final and their processes gone, minus ffmpeg/ffprobe (the media
work). It includes the stage code that runs inside the flow runs (S3 and HTTP clients,
JSON): the sequential worker's own CPU per job (``sequential.cpu_s_per_job``) shows that
part, which any set-up pays. Not counted: the other (idle) worker, moto, the fakes, the
reference backend and this bench: their CPU is in ``uncounted_cpu_s_per_job`` (by role),
and ``machine_cpu_s_per_job`` is every core's busy time (/proc/stat) over the phase, all
processes of the machine. ``idle_cpu_s_per_s`` is what the same processes spend
idle (measured for ``IDLE_S`` before the upload; not subtracted). ``processes_started``
counts, per role and command, the new processes the sampler saw (every 0.25 s: one
shorter than that may be missed).

**Events and API calls per run.** Events: the Prefect API's ``/api/events/count-by/event``
(the same filter as ``/api/events/filter``) for the events whose resource or related
resource is one of the mode's flow runs (``events_per_run``, by event name), and for
every event in the phase's window (``events_in_window_per_run``: also the workers',
the sensor's and the automations' events). API calls: the Prefect server's access log
(the stack's server runs with ``PREFECT_SERVER_LOGGING_LEVEL=INFO``, so uvicorn logs one
line per HTTP request), the lines written during the phase over N (``api_calls_per_run``,
by method and path with ids replaced): every client's calls, the workers' and the
sensor's polling included. Event emission goes over one websocket per process, so it
is not in the API calls.

**Dispatch.** Per job, from the end of its upload to its flow run's start (Running):
``dispatch_s`` gives the first run's (what an idle stack does), the median and the 90th
percentile (under the burst these include the wait for a free slot).

**Limits** (all in ``limits``): the engines' global concurrency limits (CSR 32, Claude 16
by default: ``engine_bound_jobs_per_min``, what they allow with the engine seconds per job
the sequential phase measured, is far over 15× the sequential rate, and each of the 16
runs in flight gets its two CSR slots and its Claude slot without waiting: a chunk refused
a slot sleeps for the server's Retry-After, up to 30 s, while slots free up), both
deployments' concurrency limits and both work pools' (16), and the warm worker's
``WARM_WORKER_MAX_CONCURRENT_RUNS`` (the pool's limit). Per mode,
``engine_slot_utilisation`` is the modelled engine seconds over what the limits allowed
during the wall time: near 1 the engine limits bound the throughput, well below 1
something else does. ``--deployment-concurrency``, ``--work-pool-concurrency``,
``--slot-wait-seconds``, ``--csr-concurrency`` and ``--claude-concurrency`` change them.

Targets: ``speedup_vs_sequential ≥ 10`` and ``orchestration_cpu_s_per_job ≤ 1.5``, both
in the same run. The top-level figures are the first database's warm worker (else its
first mode); every mode's figures are under ``modes``, and the other databases' whole
reports under ``other_databases``. The results go to ``bench/results/throughput.json``
and are printed as a table per database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolUpdate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from bench import harness
from bench.harness import (
    PRODUCTION_TIMEOUTS,
    SENSOR_MARKER,
    Component,
    StackSession,
    read_all_flow_runs,
)
from bench.latency_model import configure_fakes
from bench.proc_cpu import CLOCK_TICKS, CpuSampler
from bench.throughput_figures import (
    CLAUDE_LIMIT,
    CSR_LIMIT,
    MODEL,
    VIDEO_SECONDS,
    api_calls,
    build_report,
    cpu_figures,
    engine_bound,
    engine_seconds_per_job,
    median_run_seconds,
    per_run,
    print_table,
    quantile,
    rate_figures,
    recommendation,
    slot_utilisation,
)
from local_stack.database import POSTGRES, SQLITE, database_choice, postgres_server_pid
from local_stack.sample_video import make_tone_video
from local_stack.stack import (
    DEPLOYMENT,
    ISOLATED_DEPLOYMENT,
    LOCAL_REGION,
    REPO_ROOT,
    WARM_WORK_POOL,
    WORK_POOL,
    aws_client,
    prefect_client,
)

MODES = ("warm", "process", "process-engine")
DEFAULT_MODES = ("warm",)
# PostgreSQL first, the headline: the production set-up's database. On SQLite the server's
# writes collide (503 "database is locked") once many runs are in flight.
DEFAULT_DATABASES = (POSTGRES, SQLITE)
# The engines allow far over 15x the sequential rate (the product's defaults, CSR 8 and
# Claude 4, cap this bench near 8x) and every run in flight gets its slots at once: with
# more chunks waiting than slots, Prefect's 423 Retry-After back-off (up to 30 s) leaves
# slots idle, and 32 runs in flight made the SQLite server answer "database is locked".
DEFAULT_LIMITS = {"csr": 32, "claude": 16, "deployment": 16, "work_pool": 16}
SEQUENTIAL_BUCKET = "throughput-sequential-bucket"
SEQUENTIAL_QUEUE = "throughput-sequential"
SEQUENTIAL_USER = "throughput-seq"
IDLE_S = 10.0
POLL_S = 1.0
READY_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
SLOT_WAIT_VARIABLE = "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"
AWAITING_SLOT = "AwaitingConcurrencySlot"
SERVER_LOG_VARIABLE = "PREFECT_SERVER_LOGGING_LEVEL"
ROUTE_VARIABLE = "ROUTE_MAX_WARM_BYTES"
WARM_LIMIT_VARIABLE = "WARM_WORKER_MAX_CONCURRENT_RUNS"
# role: the variable holding its URL, what its command line holds ({port}: the URL's)
UNCOUNTED_SERVERS = {
    "moto": ("AWS_ENDPOINT_URL", ("moto.server", "-p {port}")),
    "fake_clova": ("FAKE_CLOVA_URL", ("local_stack.fake_clova", "--port={port}")),
    "fake_anthropic": ("FAKE_ANTHROPIC_URL", ("local_stack.fake_anthropic", "--port={port}")),
    "reference_backend": ("BACKEND_BASE_URL", ("local_stack.reference_backend", "--port={port}")),
}
EVENTS_SETTLE_S = 5.0  # the server's event persister writes in batches


log = harness.logger("throughput")


@dataclass
class Settings:
    n: int
    sequential_n: int
    modes: list[str]
    timeout_s: float
    csr_concurrency: int
    claude_concurrency: int
    deployment_concurrency: int
    work_pool_concurrency: int
    seed: int


# --- the stack -------------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    stack: StackSession
    env: dict[str, str] = field(init=False)
    video: Path = field(init=False)
    s3: Any = field(init=False)
    sqs: Any = field(init=False)
    client: SyncPrefectClient = field(init=False)
    deployment_ids: dict[str, UUID] = field(init=False)
    sensor: Component = field(init=False)
    routed_isolated: bool = False
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    uploaded: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = self.stack.env
        self.s3, self.sqs = aws_client(self.env, "s3"), aws_client(self.env, "sqs")
        self.client = prefect_client(self.env)
        self.client.__enter__()
        self.deployment_ids = {
            name: self.client.read_deployment_by_name(name).id
            for name in (DEPLOYMENT, ISOLATED_DEPLOYMENT)
        }
        self.sensor = self.stack.component("sensor", SENSOR_MARKER)
        self.video = make_tone_video(self.stack.folder / "clip-60s.mp4", seconds=VIDEO_SECONDS)

    @property
    def logs(self) -> Path:
        return self.stack.logs

    def close(self) -> None:
        for process in self.children:
            stop_process(process)
        self.client.__exit__(None, None, None)

    # set-up ---------------------------------------------------------------------------

    def configure(self) -> dict[str, Any]:
        """Engine timeouts and global limits (bootstrap), both deployments' and pools'
        limits; the limits used."""
        overrides = {
            **PRODUCTION_TIMEOUTS,
            "CLOVA_CSR_CONCURRENCY": str(self.settings.csr_concurrency),
            "CLAUDE_CONCURRENCY": str(self.settings.claude_concurrency),
        }
        harness.bootstrap(self.stack, overrides)
        for deployment_id in self.deployment_ids.values():
            self.client.update_deployment(
                deployment_id,
                DeploymentUpdate(concurrency_limit=self.settings.deployment_concurrency),
            )
        for pool in (WARM_WORK_POOL, WORK_POOL):
            self.client.update_work_pool(
                pool, WorkPoolUpdate(concurrency_limit=self.settings.work_pool_concurrency)
            )
        return self.limits()

    def limits(self) -> dict[str, Any]:
        deployments = {}
        for name, deployment_id in self.deployment_ids.items():
            deployment = self.client.read_deployment(deployment_id)
            limit = deployment.global_concurrency_limit
            deployments[name] = {
                "concurrency": limit.limit if limit else None,
                "collision_strategy": (
                    deployment.concurrency_options.collision_strategy.value
                    if deployment.concurrency_options
                    else None
                ),
            }
        return {
            CSR_LIMIT: self.client.read_global_concurrency_limit_by_name(CSR_LIMIT).limit,
            CLAUDE_LIMIT: self.client.read_global_concurrency_limit_by_name(CLAUDE_LIMIT).limit,
            "deployments": deployments,
            "work_pool_concurrency": {
                pool: self.client.read_work_pool(pool).concurrency_limit
                for pool in (WARM_WORK_POOL, WORK_POOL)
            },
            "warm_worker_max_concurrent_runs": int(os.environ[WARM_LIMIT_VARIABLE]),
            # A run refused a deployment slot is retried this much later (server setting).
            "deployment_slot_wait_s": float(os.environ.get(SLOT_WAIT_VARIABLE, 30.0)),
            "engine_timeouts_s": {key: float(value) for key, value in PRODUCTION_TIMEOUTS.items()},
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
        return {
            name: {key: found[key] for key in keep if key in found}
            for name, found in harness.fake_stats(self.env).items()
        }

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
        """Upload every copy at once; returns when the first one started. Each job's upload
        end is kept in `uploaded` (for its dispatch time)."""
        started_at = datetime.now(UTC)
        keys = {f"videos/{user}/{job}.mp4": job for job in jobs}
        ended = harness.upload_all(self.s3, self.video, bucket, keys)
        self.uploaded.update({keys[key]: moment for key, moment in ended.items()})
        return started_at

    def wait_final(self, jobs: list[str], label: str) -> dict[str, dict[str, Any]]:
        return harness.wait_final(
            self.env, jobs, self.settings.timeout_s, POLL_S, lambda text: log(f"{label}: {text}")
        )

    def settle(self, worker: Component) -> bool:
        """No run active, the queue empty, and no process left under the worker."""
        return harness.settle(self.env, SETTLE_TIMEOUT_S, POLL_S, self.sqs, worker)

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
        # (start, upload end → start) of each run, in the order they started
        started = sorted(
            (run.start_time, (run.start_time - self.uploaded[job]).total_seconds())
            for run in runs
            if run.start_time and (job := run.name.removeprefix("job-")) in self.uploaded
        )
        dispatch = [seconds for _, seconds in started]
        return {
            "flow_runs": len(runs),
            "flow_run_ids": [run.id for run in runs],
            "states": dict(Counter(run.state_name or "?" for run in runs)),
            "median_run_s": median_run_seconds(runs),
            # Times a run was refused a deployment slot and rescheduled (slot wait later).
            "deployment_slot_refusals": slot_waits,
            "dispatch_s": {
                "first": round(dispatch[0], 2) if dispatch else None,
                "median": quantile(dispatch, 0.5),
                "p90": quantile(dispatch, 0.9),
            },
        }

    # events and API calls ---------------------------------------------------------------

    def count_events(self, since: datetime, until: datetime, run_ids: Sequence[UUID]) -> Any:
        """Events by name: those of the runs' resources, and all in the window."""
        url = f"{self.env['PREFECT_API_URL']}/events/count-by/event"
        occurred = {"since": since.isoformat(), "until": until.isoformat()}
        runs = {"any_resource": {"id": [f"prefect.flow-run.{run_id}" for run_id in run_ids]}}
        # The stack's server asks for its credential (HTTP basic, `user:password`).
        user, _, password = self.env.get("PREFECT_API_AUTH_STRING", "").partition(":")
        auth = (user, password) if user else None
        counts = []
        for extra in (runs, {}):
            body = {"filter": {"occurred": occurred, **extra}, "time_unit": "day"}
            response = httpx.post(url, json=body, timeout=60, auth=auth)
            response.raise_for_status()
            counts.append(Counter({row["value"]: row["count"] for row in response.json()}))
        return counts[0], counts[1]

    def server_log_offset(self) -> int:
        return (self.logs / "prefect-server.log").stat().st_size

    def server_requests(self, offset: int) -> Counter[str]:
        with (self.logs / "prefect-server.log").open("rb") as log_file:
            log_file.seek(offset)
            text = log_file.read().decode(errors="replace")
        return api_calls(text.splitlines())

    # routing ----------------------------------------------------------------------------

    def route_everything_isolated(self, isolated: bool) -> int:
        """Have the supervisor start the sensor again with ROUTE_MAX_WARM_BYTES=0 (every
        upload to the isolated deployment, the process worker) or as the stack started
        it; its pid once it serves /metrics."""
        if isolated == self.routed_isolated:
            pid = self.sensor.find()
            if pid is None:
                raise RuntimeError("the stack's sensor is not running")
            return pid
        pid = self.sensor.restart_with(
            self.stack.folder, {ROUTE_VARIABLE: "0"} if isolated else {}, READY_TIMEOUT_S
        )
        self.routed_isolated = isolated
        if harness.sensor_ready(self.env, READY_TIMEOUT_S) is None:
            raise RuntimeError(f"the restarted sensor is not ready; see {self.logs / 'sensor.log'}")
        return pid

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
        jobs = harness.job_ids(n, self.settings.seed)
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
        return {
            **rate_figures(n, started_at, records),
            "cpu_s_per_job": round(cpu.orchestration_s / done, 3) if done else None,
            "media_cpu_s_per_job": round(cpu.media_s / done, 3) if done else None,
            "engine_seconds_per_job": engine_seconds_per_job(stats, done),
            "fakes": stats,
        }

    # a concurrent phase -----------------------------------------------------------------

    def run_mode(self, mode: str, index: int) -> dict[str, Any]:
        n = self.settings.n
        user = f"throughput-{mode}"
        jobs = harness.job_ids(n, self.settings.seed + 1 + index)
        warm = mode == "warm"
        pool = WARM_WORK_POOL if warm else WORK_POOL
        server = self.stack.component("prefect-server", ["server", "start"])
        worker = self.stack.component("worker", ["worker", "start", "--pool", pool])
        roots = {
            "prefect-server": server.find(),
            "sensor": self.route_everything_isolated(not warm),
            "worker": worker.find(),
        }
        if self.env["PREFECT_DB"] == POSTGRES:  # the server's database work happens there
            roots["postgres"] = postgres_server_pid(self.stack.folder)
        missing = [name for name, pid in roots.items() if pid is None]
        if missing:
            raise RuntimeError(f"{mode}: processes not found in /proc: {missing}")
        pids = {name: pid for name, pid in roots.items() if pid is not None}
        others = self.uncounted_processes(mode)
        restore = self.set_engine_command() if mode == "process-engine" else None
        try:
            configure_fakes(self.env, MODEL)  # stats reset too
            idle = CpuSampler(pids)
            idle.start()
            time.sleep(IDLE_S)
            idle_cpu = sum(role.total_s for role in idle.stop().values()) / IDLE_S
            log_offset = self.server_log_offset()
            sampler = CpuSampler(pids)
            sampler.start()
            uncounted = CpuSampler(others)
            uncounted.start()
            machine_before, bench_before = machine_busy_s(), own_cpu_s()
            log(f"{mode}: uploading {n} one-minute videos at once")
            began = time.monotonic()
            started_at = self.upload_all(self.env["VIDEO_BUCKET_NAME"], user, jobs)
            records = self.wait_final(jobs, mode)
            settled = self.settle(worker)
            cpu = sampler.stop()
            uncounted_cpu = uncounted.stop()
            machine_cpu = machine_busy_s() - machine_before
            bench_cpu = own_cpu_s() - bench_before
            cpu_window = time.monotonic() - began
            ended_at = datetime.now(UTC)
            requests = self.server_requests(log_offset)
        finally:
            if restore is not None:
                restore()
        done = sum(record.get("state") == "DONE" for record in records.values())
        summary = self.flow_run_summary(user)
        time.sleep(EVENTS_SETTLE_S)
        run_events, window_events = self.count_events(
            started_at, ended_at, summary.pop("flow_run_ids")
        )
        result = {
            **rate_figures(n, started_at, records),
            **cpu_figures(cpu, done),
            "events": per_run(run_events, n),
            "events_in_window": per_run(window_events, n),
            "api_calls": per_run(requests, n),
            "cpu_window_s": round(cpu_window, 1),
            "machine_cpu_s_per_job": round(machine_cpu / n, 3),
            "uncounted_cpu_s_per_job": {
                **{name: round(role.total_s / n, 3) for name, role in uncounted_cpu.items()},
                "bench": round(bench_cpu / n, 3),
            },
            "processes_started": sampler.started(),
            "cpu_samples": sampler.samples,
            "idle_cpu_s_per_s": round(idle_cpu, 3),
            "settled": settled,
            **summary,
            "fakes": self.fake_stats(),
        }
        result["engine_slot_utilisation"] = slot_utilisation(self.limits(), result)
        log(
            f"{mode}: {done}/{n} done in {result['wall_s']} s, {result['jobs_per_min']} jobs/min "
            f"({result['sustained_jobs_per_min']} sustained), "
            f"{result['orchestration_cpu_s_per_job']} orchestration CPU-s/job, "
            f"{result['events']['per_run']} events/run, "
            f"{result['api_calls']['per_run']} API calls/run"
        )
        return result

    def uncounted_processes(self, mode: str) -> dict[str, int]:
        """The processes the orchestration figure leaves out, by role: what else the
        machine's CPU went to (the other worker, moto, the fakes, the backend; this
        bench's own CPU is read apart)."""
        idle_pool = WORK_POOL if mode == "warm" else WARM_WORK_POOL
        found = {"idle-worker": self.stack.component("idle", ["--pool", idle_pool]).find()}
        # Started before the Prefect server, so known by their ports, not PREFECT_API_URL.
        markers = {
            name: [part.format(port=urlsplit(self.env[variable]).port) for part in parts]
            for name, (variable, parts) in UNCOUNTED_SERVERS.items()
        }
        for info in harness.processes():
            joined = " ".join(info.cmdline)
            for name, marker in markers.items():
                if all(part in joined for part in marker):
                    found[name] = info.pid
        return {name: pid for name, pid in found.items() if pid}

    def set_engine_command(self) -> Callable[[], None]:
        """Give the isolated deployment the job variable `command` (one engine process per
        run)."""
        deployment_id = self.deployment_ids[ISOLATED_DEPLOYMENT]
        deployment = self.client.read_deployment(deployment_id)
        before = dict(deployment.job_variables or {})
        command = f"{sys.executable} -m prefect.engine"
        self.client.update_deployment(
            deployment_id, DeploymentUpdate(job_variables={**before, "command": command})
        )

        def restore() -> None:
            self.client.update_deployment(deployment_id, DeploymentUpdate(job_variables=before))

        return restore


def database_choices(value: str) -> list[str]:
    return [database_choice(choice.strip()) for choice in value.split(",") if choice.strip()]


def machine_busy_s() -> float:
    """CPU seconds every core spent not idle since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def own_cpu_s() -> float:
    """This process's CPU seconds, its children's apart."""
    times = os.times()
    return times.user + times.system


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.bench_parser("throughput", __doc__)
    parser.add_argument(
        "--db",
        type=database_choices,
        default=list(DEFAULT_DATABASES),
        help="comma-separated Prefect server databases, one stack each, the first the "
        f"headline: {SQLITE}, {POSTGRES} or a postgresql+asyncpg:// URL "
        f"(default {','.join(DEFAULT_DATABASES)})",
    )
    parser.add_argument("--n", type=int, default=100, help="videos per concurrent mode (100)")
    parser.add_argument("--sequential-n", type=int, default=10, help="jobs of the baseline (10)")
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help=f"comma-separated, of {', '.join(MODES)} (run in that order; default warm)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per phase")
    parser.add_argument(
        "--csr-concurrency", type=int, default=DEFAULT_LIMITS["csr"], help="global limit (32)"
    )
    parser.add_argument(
        "--claude-concurrency", type=int, default=DEFAULT_LIMITS["claude"], help="global limit (16)"
    )
    parser.add_argument(
        "--deployment-concurrency",
        type=int,
        default=DEFAULT_LIMITS["deployment"],
        help="each process-video deployment's limit (16)",
    )
    parser.add_argument(
        "--work-pool-concurrency",
        type=int,
        default=DEFAULT_LIMITS["work_pool"],
        help="runs each pool hands out at once, and the warm worker's limit (16)",
    )
    parser.add_argument(
        "--slot-wait-seconds",
        type=float,
        default=None,
        help=f"server's retry delay for a refused deployment slot ({SLOT_WAIT_VARIABLE}; 30)",
    )
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args(list(argv) if argv is not None else None)
    chosen = {mode.strip() for mode in args.modes.split(",") if mode.strip()}
    modes = [mode for mode in MODES if mode in chosen]
    unknown = sorted(chosen - set(MODES))
    if unknown or not modes:
        parser.error(f"--modes: unknown {unknown}; choose from {', '.join(MODES)}")
    if not args.db:
        parser.error("--db: give at least one database")
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
        seed=args.seed,
    )
    # The stack's processes inherit these: the server's slot wait and access log, and
    # the warm worker's own limit (the pool's).
    if args.slot_wait_seconds is not None:
        os.environ[SLOT_WAIT_VARIABLE] = str(args.slot_wait_seconds)
    os.environ[SERVER_LOG_VARIABLE] = "INFO"
    os.environ[WARM_LIMIT_VARIABLE] = str(args.work_pool_concurrency)
    reports = [measure(settings, database, args.keep) for database in args.db]
    report = {**reports[0], "other_databases": {other["database"]: other for other in reports[1:]}}
    databases = ", ".join(each["database"] for each in reports)
    harness.write_report(report, args.output, f"throughput, N={settings.n}, {databases}")
    for each in reports:
        print(f"  on {each['database']}:")
        print_table(each)
        print(f"  {each['recommendation']}")
    return 0 if report["target_met"] else 1


def measure(settings: Settings, database: str, keep: bool) -> dict[str, Any]:
    """The sequential baseline and every mode on a stack whose server uses `database`."""
    with StackSession("throughput", database=database, keep=keep) as stack:
        bench = Bench(settings, stack)
        stack.on_close(bench.close)
        limits = bench.configure()
        log(f"stack up in {stack.stack_start_s:.0f} s; limits {limits}")
        sequential = bench.run_sequential()
        log(f"sequential: {sequential['jobs_per_min']} jobs/min")
        limits["engine_bound_jobs_per_min"] = engine_bound(
            limits, sequential["engine_seconds_per_job"]
        )
        modes = settings.modes
        results = {mode: bench.run_mode(mode, index) for index, mode in enumerate(modes)}
        report = build_report(
            sequential,
            results,
            limits,
            {
                "machine": harness.machine(stack.load_at_start),
                "database": stack.env["PREFECT_DB"],
                "stack_start_s": round(stack.stack_start_s, 1),
                "total_s": stack.elapsed(),
            },
        )
        report["recommendation"] = recommendation(report)
        stack.succeeded(all(mode["done"] == mode["n"] for mode in report["modes"].values()))
    report["stack_folder"] = stack.kept_folder
    return report


if __name__ == "__main__":
    sys.exit(main())

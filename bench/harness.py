"""What every bench on a local stack shares: the stack's session, its processes, probes of
its parts, uploads, and the report (written to ``bench/results/<name>.json`` and printed).

A bench reads as: parse its flags (`bench_parser`), open a `StackSession` (starts the
stack in a temporary folder; on leaving it stops the stack, kills what the stack left
running, and removes the folder unless the bench keeps it), measure with the probes
below, and `write_report`.

The stack's parts are found in /proc (by command line and ``PREFECT_API_URL``) and
started again with other settings through the stack's supervisor (`Component`); the
fakes, the reference backend, the Prefect server and moto are reached over HTTP only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort

from bench.proc_cpu import all_stats, tree
from local_stack.database import add_database_argument
from local_stack.stack import (
    REPO_ROOT,
    WARM_WORK_POOL,
    prefect_client,
    read_stack_env,
    set_restart_env,
    stack_command,
)

RESULTS = Path(__file__).resolve().parent / "results"
# The production defaults of the client timeouts (the stack's fake mode sets a few seconds,
# shorter than one modelled 55 s CSR chunk).
PRODUCTION_TIMEOUTS = {"CLOVA_TIMEOUT_SECONDS": "60", "CLAUDE_TIMEOUT_SECONDS": "120"}
FAKES = {"clova": "FAKE_CLOVA_URL", "anthropic": "FAKE_ANTHROPIC_URL"}
SENSOR_MARKER = ("sensors.sqs_sensor",)
WARM_WORKER_MARKER = ("worker", "start", "--pool", WARM_WORK_POOL)
UPLOAD_THREADS = 8
PREFECT_PAGE = 200
BOOTSTRAP_TIMEOUT_S = 300
ACTIVE_STATES = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.CANCELLING,
    StateType.PAUSED,
]


def logger(name: str) -> Callable[[str], None]:
    """A bench's log: `[name HH:MM:SS] message` on stdout, flushed."""

    def log(message: str) -> None:
        print(f"[{name} {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)

    return log


# --- command line and report -----------------------------------------------------------


def bench_parser(name: str, doc: str | None, database: bool = False) -> argparse.ArgumentParser:
    """`python -m bench.<name>` with the flags every stack bench has: --output and --keep
    (and --db when the bench lets the Prefect server's database be chosen)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}", description=(doc or "").split("\n")[0]
    )
    parser.add_argument("--output", type=Path, default=RESULTS / f"{name}.json")
    parser.add_argument("--keep", action="store_true", help="keep the stack folder (logs)")
    if database:
        add_database_argument(parser)
    return parser


def write_report(report: Mapping[str, Any], output: Path, title: str) -> None:
    """Write the report as JSON and print the title line of its summary."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"{title} (written to {output}):")


def print_figures(report: Mapping[str, Any], keys: Sequence[str]) -> None:
    """`key  value` lines, aligned."""
    width = max(len(key) for key in keys)
    for key in keys:
        print(f"  {key:<{width}}  {report[key]}")


def machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
    }


def job_ids(n: int, seed: int) -> list[str]:
    """N distinct job ids, the same for the same seed."""
    rng = random.Random(seed)
    return [f"c{index:04d}{rng.getrandbits(32):08x}" for index in range(n)]


# --- the stack's session ---------------------------------------------------------------


class StackSession:
    """A local stack (``--engines fake``) in a temporary folder, for one bench.

    The folder exists from construction (a bench may put files there before the stack
    starts); entering starts the stack; leaving runs the bench's clean-ups (`on_close`),
    stops the stack, SIGKILLs what still runs for it, and removes the folder unless
    `keep`, or unless the bench did not call `succeeded(True)` (an error, a missed
    target): then its path is logged."""

    def __init__(self, name: str, *, database: str | None = None, keep: bool = False) -> None:
        self.log = logger(name)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{name}-stack-"))
        self.database, self.keep = database, keep
        self.env: dict[str, str] = {}
        self.load_at_start = os.getloadavg()
        self.began = time.monotonic()
        self.stack_start_s = 0.0
        self.kept_folder: str | None = None
        self._ok = False
        self._cleanups: list[Callable[[], None]] = []

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def __enter__(self) -> StackSession:
        self.log(f"starting the local stack in {self.folder}; load average {self.load_at_start}")
        try:
            started = stack_command("up", self.folder, database=self.database)
            if started.returncode != 0:
                print(started.stdout, started.stderr, file=sys.stderr)
                raise RuntimeError("the local stack failed to start")
            self.env = read_stack_env(self.folder)
        except BaseException:
            self._close()
            raise
        self.stack_start_s = time.monotonic() - self.began
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._close()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.began, 1)

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run `cleanup` before the stack is stopped (last registered, first run)."""
        self._cleanups.append(cleanup)

    def succeeded(self, ok: bool) -> None:
        """Whether the folder may go (with the stack) once the bench is done."""
        self._ok = ok

    def component(self, name: str, marker: Sequence[str]) -> Component:
        return Component(name, marker, self.env["PREFECT_API_URL"])

    def _close(self) -> None:
        try:
            for cleanup in reversed(self._cleanups):
                cleanup()
        finally:
            stack_command("down", self.folder)
            if self.env:
                left = kill_leftovers(self.env["PREFECT_API_URL"])
                if left:
                    self.log(f"killed {len(left)} leftover processes of the stack: {left}")
            if self.keep or not self._ok:
                self.kept_folder = str(self.folder)
                self.log(f"stack folder kept: {self.folder} (logs in {self.logs})")
            else:
                shutil.rmtree(self.folder, ignore_errors=True)


def bootstrap(session: StackSession, overrides: Mapping[str, str]) -> None:
    """Run ``python -m blocks.bootstrap`` again (blocks, global concurrency limits) with
    `overrides` in its environment; its output goes to logs/bootstrap.log."""
    with (session.logs / "bootstrap.log").open("ab") as output:
        subprocess.run(
            [sys.executable, "-m", "blocks.bootstrap"],
            cwd=REPO_ROOT,
            env={**os.environ, **session.env, **overrides},
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=BOOTSTRAP_TIMEOUT_S,
            check=True,
        )


# --- the stack's processes, found through /proc ----------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    cmdline: list[str]


def processes() -> Iterator[ProcessInfo]:
    """Every process with a command line (not zombies, not kernel threads)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            words = [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]
            yield ProcessInfo(int(entry.name), words)


def environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if item)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def sigkill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def kill_leftovers(api_url: str) -> list[int]:
    """SIGKILL what still runs for this stack (flow runs the killed workers left behind)."""
    own = os.getpid()
    leftovers = [
        info.pid
        for info in processes()
        if info.pid != own and (environ(info.pid) or {}).get("PREFECT_API_URL") == api_url
    ]
    return [pid for pid in leftovers if sigkill(pid)]


@dataclass
class Component:
    """A long-running part of the stack (sensor, worker); the stack's supervisor starts it
    again when it exits, as Kubernetes restarts a pod."""

    name: str
    marker: Sequence[str]  # every one of these occurs in its command line
    api_url: str
    kills: int = 0
    terms: int = 0

    def find(self) -> int | None:
        """The pid of this stack's process (matched by command line and PREFECT_API_URL)."""
        for info in processes():
            joined = " ".join(info.cmdline)
            if not all(part in joined for part in self.marker):
                continue
            if (environ(info.pid) or {}).get("PREFECT_API_URL") == self.api_url:
                return info.pid
        return None

    def pid(self) -> int:
        pid = self.find()
        if pid is None:
            raise RuntimeError(f"the stack's {self.name} is not running")
        return pid

    def kill(self, with_children: bool) -> list[int]:
        """SIGKILL the process (first, so it reports nothing), then what it started."""
        pid = self.find()
        if pid is None:
            return []
        tree_pids = [stat.pid for stat in tree(pid, all_stats())[1:]] if with_children else []
        killed = [p for p in [pid, *tree_pids] if sigkill(p)]
        self.kills += 1
        return killed

    def terminate(self) -> int | None:
        """SIGTERM: a worker stops claiming and drains the runs in hand."""
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


# --- probes of the stack's parts -------------------------------------------------------


def backend_jobs(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The reference backend's record of every job, by job id."""
    response = httpx.get(f"{env['BACKEND_BASE_URL']}/internal/jobs", timeout=30)
    response.raise_for_status()
    return {job["job_id"]: job for job in response.json()}


def is_final(job: Mapping[str, Any] | None) -> bool:
    return job is not None and job.get("state") in ("DONE", "FAILED")


def fake_stats(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``GET /__admin/stats`` of the fake CLOVA and Anthropic servers, by fake."""
    with httpx.Client(timeout=10) as http:
        return {
            name: http.get(f"{env[variable]}/__admin/stats").json()
            for name, variable in FAKES.items()
        }


def read_all_flow_runs(client: SyncPrefectClient, **filters: Any) -> list[FlowRun]:
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(
            limit=PREFECT_PAGE, offset=len(runs), sort=FlowRunSort.ID_DESC, **filters
        )
        runs.extend(page)
        if len(page) < PREFECT_PAGE:
            return runs


def active_flow_runs(env: Mapping[str, str]) -> int:
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


def sensor_ready(
    env: Mapping[str, str], timeout_s: float, stop: threading.Event | None = None
) -> float | None:
    """Wait until the sensor serves /metrics (it polls right after); the seconds waited, or
    None when it did not within `timeout_s` (or `stop` was set)."""
    url = f"http://127.0.0.1:{env['SENSOR_METRICS_PORT']}/metrics"
    stop = stop or threading.Event()
    began = time.monotonic()
    while time.monotonic() - began < timeout_s and not stop.is_set():
        try:
            httpx.get(url, timeout=2)
            return time.monotonic() - began
        except httpx.HTTPError:
            stop.wait(0.5)
    return None


def upload_all(s3: Any, video: Path, bucket: str, keys: Iterable[str]) -> dict[str, datetime]:
    """Upload a copy of `video` under each key at once (a few threads); each one's end."""
    ended: dict[str, datetime] = {}

    def upload(key: str) -> None:
        s3.upload_file(str(video), bucket, key)
        ended[key] = datetime.now(UTC)

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(upload, keys))
    return ended


def wait_final(
    env: Mapping[str, str],
    jobs: Sequence[str],
    timeout_s: float,
    poll_s: float,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The backend's records of `jobs` once each has a final callback (or at the timeout);
    `progress` hears how many are final every 30 s."""
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    while True:
        records = backend_jobs(env)
        finished = sum(is_final(records.get(job)) for job in jobs)
        if finished == len(jobs) or time.monotonic() > deadline:
            return {job: records[job] for job in jobs if job in records}
        if progress is not None and time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            progress(f"{finished}/{len(jobs)} final")
        time.sleep(poll_s)


def settle(
    env: Mapping[str, str],
    timeout_s: float,
    poll_s: float,
    sqs: Any = None,
    worker: Component | None = None,
) -> bool:
    """Wait until no flow run is active (and, when given, the stack's queue is empty and
    no process is left under the worker); whether that happened within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = active_flow_runs(env) or (sqs is not None and queue_depth(sqs, env["SQS_QUEUE_URL"]))
        pid = worker.find() if worker is not None else None
        if not busy and (pid is None or len(tree(pid, all_stats())) == 1):
            return True
        time.sleep(poll_s)
    return False

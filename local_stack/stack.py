"""The local stack: every part of the pipeline started for real, on loopback.

`python -m local_stack up` starts a supervisor in the background and returns once the
stack is ready; the supervisor owns these processes and stops them on SIGTERM
(`python -m local_stack down`):

- a moto server (S3 + SQS) with the video bucket's notifications sent to the queue,
  and a dead-letter queue behind it;
- fake CLOVA CSR, CLOVA Speech and Anthropic servers, and the reference backend;
- a Prefect server (SQLite under the stack folder, or PostgreSQL: see
  local_stack.database) that refuses API calls without the stack's random credential
  (`PREFECT_API_AUTH_STRING` in stack.env), the blocks, the warm and process work pools,
  every deployment of prefect.yaml (`deploy --all`), the warm worker (the runs of small
  uploads, in one process) and a process worker (large uploads, and the operations
  flows);
- the SQS sensor.

Every port is picked free at start, and all state lives in the stack folder, so two
checkouts (or a test run beside a demo) never clash. The endpoints are written to
`<folder>/stack.env`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import boto3
import httpx

from local_stack.database import CHOICE_VARIABLE, SQLITE, PrefectDatabase

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_REGION = "ap-northeast-2"
LOCAL_ACCESS_KEY = "local-stack-key"
LOCAL_SECRET_KEY = "local-stack-secret"
VIDEO_BUCKET = "shortform-video-bucket"
RESULT_BUCKET = "shortform-result-bucket"
QUEUE_NAME = "video-ingest-queue"
DEAD_LETTER_QUEUE_NAME = "video-ingest-dlq"
MAX_RECEIVE_COUNT = 10  # survives sensor crashes mid-batch; poison messages still move fast
WORK_POOL = "local-process"
WARM_WORK_POOL = "video-warm"
K8S_WORK_POOL = "video-k8s"
DEPLOYMENT = "process-video/process-video-warm"
ISOLATED_DEPLOYMENT = "process-video/process-video-local"
PREFERRED_UI_PORT = 4200
# 0: any free port. Tests and benches use it: stacks started at the same moment would
# all find 4200 free, and the Prefect server binds it with SO_REUSEPORT, so they'd share it.
UI_PORT_VARIABLE = "LOCAL_STACK_UI_PORT"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
SERVER_START_ATTEMPTS = 3
RESTARTED_ON_EXIT = frozenset({"sensor", "worker", "warm-worker"})
PROCESS_WORKER_QUERY_SECONDS = 5
RESTART_CHECK_S = 1.0
FAKE_ENGINES = "fake"
PREFECT_CLI = str(Path(sys.executable).with_name("prefect"))


def free_port(preferred: int | None = None) -> int:
    """A port nobody listens on (the preferred one when it is free)."""
    candidates = [preferred, 0] if preferred else [0]
    for candidate in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate or 0))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def wait_until_ready(
    url: str, timeout_s: float = READY_TIMEOUT_S, check: Callable[[], None] = lambda: None
) -> None:
    """Poll `url` until it answers; `check` raises early when what serves it has died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check()
        try:
            if httpx.get(url, timeout=2).status_code < httpx.codes.INTERNAL_SERVER_ERROR:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@dataclass
class Stack:
    """The processes of one local stack and the environment they share."""

    folder: Path
    engines: str
    database: str = SQLITE
    # No sensor and no worker: they run elsewhere (containers: `make image-check`).
    external_workers: bool = False
    env: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    prefect_database: PrefectDatabase | None = None
    commands: dict[str, list[str]] = field(default_factory=dict)
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def spawn(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> None:
        """Start a process of the stack; `env` is for this process alone (not stack.env)."""
        self.commands[name] = command
        self.process_env[name] = dict(env or {})
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.processes.append((name, process))

    def run(self, name: str, command: list[str]) -> None:
        """Run a set-up command to completion; its output goes to the stack's logs."""
        with (self.logs / f"{name}.log").open("ab") as log:
            subprocess.run(
                command,
                cwd=REPO_ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=True,
            )

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_aws()
        self._start_fakes()
        self._start_prefect()
        if self.external_workers:
            return
        self.env.update(
            SENSOR_HEARTBEAT_FILE=str(self.folder / "sensor.heartbeat"),
            SENSOR_METRICS_HOST="127.0.0.1",
            SENSOR_METRICS_PORT=str(free_port()),
            SENSOR_OUTCOMES_POLL_SECONDS="1",
        )
        self.spawn("sensor", [sys.executable, "-m", "sensors.sqs_sensor"])
        metrics_port = self.env["SENSOR_METRICS_PORT"]
        wait_until_ready(f"http://127.0.0.1:{metrics_port}/metrics", check=self._check_alive)
        self._check_alive()

    def _start_aws(self) -> None:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        self.spawn("moto", moto_command(port))
        wait_until_ready(f"{endpoint}/moto-api/", check=self._check_alive)
        self.env.update(
            local_aws_env(endpoint),
            VIDEO_BUCKET_NAME=VIDEO_BUCKET,
            RESULT_BUCKET_NAME=RESULT_BUCKET,
        )
        queue_url, dlq_url = create_aws_resources(endpoint)
        self.env.update(SQS_QUEUE_URL=queue_url, SQS_DLQ_URL=dlq_url)

    def _start_fakes(self) -> None:
        backend_port, clova_port, claude_port = free_port(), free_port(), free_port()
        token, signing_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        clova_key_id, clova_key = secrets.token_hex(8), secrets.token_urlsafe(24)
        claude_key = f"sk-ant-local-{secrets.token_urlsafe(24)}"
        speech_port, speech_key = free_port(), secrets.token_urlsafe(24)
        speech_invoke_path = f"/external/v1/{secrets.randbelow(10_000)}/{secrets.token_hex(16)}"
        # `--flag=value`: a random value may start with "-".
        fakes = {
            "backend": (
                "reference_backend",
                backend_port,
                [f"--token={token}", f"--signing-secret={signing_secret}"],
            ),
            "fake-clova": (
                "fake_clova",
                clova_port,
                [f"--api-key-id={clova_key_id}", f"--api-key={clova_key}"],
            ),
            "fake-anthropic": ("fake_anthropic", claude_port, [f"--api-key={claude_key}"]),
            "fake-clova-speech": (
                "fake_clova_speech",
                speech_port,
                [f"--secret-key={speech_key}", f"--invoke-path={speech_invoke_path}"],
            ),
        }
        for name, (module, port, options) in fakes.items():
            command = [sys.executable, "-m", f"local_stack.{module}", f"--port={port}", *options]
            self.spawn(name, command)
        self.env.update(
            BACKEND_BASE_URL=f"http://127.0.0.1:{backend_port}",
            BACKEND_INTERNAL_TOKEN=token,
            CALLBACK_SIGNING_SECRET=signing_secret,
            FAKE_CLOVA_URL=f"http://127.0.0.1:{clova_port}",
            FAKE_ANTHROPIC_URL=f"http://127.0.0.1:{claude_port}",
            FAKE_CLOVA_SPEECH_URL=f"http://127.0.0.1:{speech_port}",
        )
        for port in (backend_port, clova_port, claude_port, speech_port):
            wait_until_ready(f"http://127.0.0.1:{port}/__admin/stats", check=self._check_alive)
        if self.engines == FAKE_ENGINES:
            self.env.update(
                # The fakes fail and stall on demand; tests need not wait for long.
                RETRY_DELAY_SECONDS="0.2",
                CLOVA_TIMEOUT_SECONDS="5",
                CLAUDE_TIMEOUT_SECONDS="5",
                CLOVA_STT_URL=f"http://127.0.0.1:{clova_port}/recog/v1/stt?lang=Kor",
                CLOVA_API_KEY_ID=clova_key_id,
                CLOVA_API_KEY=clova_key,
                CLAUDE_API_URL=f"http://127.0.0.1:{claude_port}/v1/messages",
                CLAUDE_API_KEY=claude_key,
                CLOVA_SPEECH_INVOKE_URL=f"http://127.0.0.1:{speech_port}{speech_invoke_path}",
                CLOVA_SPEECH_SECRET_KEY=speech_key,
            )

    def _start_prefect(self) -> None:
        self.env.update(
            # Prefect's basic authentication: every client (workers, sensor, flow runs)
            # sends it; the server alone gets PREFECT_SERVER_API_AUTH_STRING.
            PREFECT_API_AUTH_STRING=f"local:{secrets.token_urlsafe(24)}",
            PREFECT_HOME=str(self.folder / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_DATABASE_TIMEOUT="30",
            PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT="30",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_DEFAULT_RESULT_STORAGE_BLOCK="s3-bucket/prefect-results",
            PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
            PREFECT_LOGGING_EXTRA_LOGGERS="video_processor",
            # The sensor's and the workers' own lines (no flow run) stay in their logs,
            # without a warning for each that the UI cannot show them.
            PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore",
            # The warm worker's runs take their environment from the worker.
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
            # The server does not ask for CSRF tokens (its CSRF protection is off), so the
            # clients do not fetch one each: a few API calls less per run.
            PREFECT_CLIENT_CSRF_SUPPORT_ENABLED="false",
            APP_ROOT=str(REPO_ROOT),
        )
        self._start_prefect_server(self._start_database())
        for pool, pool_type in ((WORK_POOL, "process"), (WARM_WORK_POOL, "warm")):
            self.run(
                "work-pool",
                [PREFECT_CLI, "work-pool", "create", pool, "--type", pool_type, "--overwrite"],
            )
        # The Kubernetes pool has no worker here; it exists so `deploy --all` deploys
        # every deployment of prefect.yaml (--no-prompt refuses a missing pool).
        self.run(
            "work-pool",
            [
                PREFECT_CLI,
                "work-pool",
                "create",
                K8S_WORK_POOL,
                "--type",
                "kubernetes",
                "--base-job-template",
                str(REPO_ROOT / "deploy" / "k8s" / "work-pool-template.json"),
                "--overwrite",
            ],
        )
        self.run("deploy", [PREFECT_CLI, "--no-prompt", "deploy", "--all"])
        # After the deploy: the automations it creates name the deployments.
        self.run("bootstrap", [sys.executable, "-m", "operations.bootstrap"])
        if self.external_workers:
            return
        # The process worker takes the isolated (large) videos and operations runs, whose
        # start-up is seconds anyway: it polls less often than the warm worker, whose
        # dispatch time is the short videos' latency. Every poll costs the server CPU.
        self.spawn(
            "worker",
            [PREFECT_CLI, "worker", "start", "--pool", WORK_POOL, "--type", "process"],
            env={"PREFECT_WORKER_QUERY_SECONDS": str(PROCESS_WORKER_QUERY_SECONDS)},
        )
        self.spawn("warm-worker", warm_worker_command())

    def _start_prefect_server(self, database_env: Mapping[str, str]) -> None:
        """The UI port is picked free, but another stack starting at the same moment may
        bind it first, and then `/health` answers for that stack's server: the server
        that answers must have this stack's PREFECT_HOME, or it starts on another port."""
        preferred = int(os.environ.get(UI_PORT_VARIABLE, PREFERRED_UI_PORT)) or None
        for _ in range(SERVER_START_ATTEMPTS):
            ui_port = free_port(preferred)
            api_url = f"http://127.0.0.1:{ui_port}/api"
            self.env.update(PREFECT_API_URL=api_url, PREFECT_UI_URL=f"http://127.0.0.1:{ui_port}")
            auth_string = self.env["PREFECT_API_AUTH_STRING"]
            self.spawn(
                "prefect-server",
                [PREFECT_CLI, "server", "start", "--host", "127.0.0.1", "--port", str(ui_port)],
                env={**database_env, "PREFECT_SERVER_API_AUTH_STRING": auth_string},
            )
            wait_until_ready(f"{api_url}/health", check=self._check_alive)
            user, password = auth_string.split(":", 1)
            # Another stack's server refuses this stack's credential (no "home" then).
            answer = httpx.get(f"{api_url}/admin/settings", auth=(user, password), timeout=10)
            home = answer.json().get("home")
            if Path(str(home)).resolve() == Path(self.env["PREFECT_HOME"]).resolve():
                return
            _, server = self.processes.pop()
            server.terminate()
            server.wait(timeout=STOP_TIMEOUT_S)
            preferred = None
        raise RuntimeError("no free port for the Prefect server")

    def _start_database(self) -> dict[str, str]:
        """Start the Prefect server's database; returns its setting, for the server alone."""
        self.prefect_database = PrefectDatabase(self.database, self.folder)
        database_env = self.prefect_database.start(
            sqlite_file=self.folder / "prefect" / "prefect.db",
            log=self.logs / "postgres.log",
            port=free_port(),
        )
        self.env.update(self.prefect_database.stack_env())
        return database_env

    def restart_exited(self) -> list[str]:
        """Start again the workers and the sensor that exited (as Kubernetes restarts a
        pod): a killed worker's runs are then recovered on its successor."""
        exited = [
            (name, process)
            for name, process in self.processes
            if name in RESTARTED_ON_EXIT and process.poll() is not None
        ]
        for name, process in exited:
            self.processes.remove((name, process))
            env = {**self.process_env[name], **restart_env(self.folder, name)}
            self.spawn(name, self.commands[name], env=env)
        return [name for name, _ in exited]

    def _check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs}")

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        # Last: the Prefect server is gone, so nothing is left to write to it.
        if self.prefect_database is not None:
            self.prefect_database.stop()

    def write_env_file(self) -> Path:
        """Write the endpoints atomically: its presence means the stack is ready."""
        path = self.folder / "stack.env"
        temporary = path.with_suffix(".tmp")
        temporary.write_text("".join(f"{key}={value}\n" for key, value in sorted(self.env.items())))
        temporary.replace(path)
        return path


def create_aws_resources(endpoint: str) -> tuple[str, str]:
    """Buckets, the queue with its DLQ, and the bucket notification (moto sends TestEvent)."""
    env = {
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
        "AWS_REGION": LOCAL_REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    s3, sqs = aws_client(env, "s3"), aws_client(env, "sqs")
    location = {"LocationConstraint": LOCAL_REGION}
    for bucket in (VIDEO_BUCKET, RESULT_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
    dlq_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": "90",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=VIDEO_BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "videos/"}]}},
                }
            ]
        },
    )
    return queue_url, dlq_url


def supervise(
    folder: Path, engines: str, database: str = SQLITE, external_workers: bool = False
) -> int:
    """Start the stack, write stack.env, then wait for SIGTERM and stop everything."""
    stack = Stack(
        folder=folder, engines=engines, database=database, external_workers=external_workers
    )
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        stack.start()
        stack.write_env_file()
        while not stopping:
            time.sleep(RESTART_CHECK_S)
            for name in stack.restart_exited():
                print(f"{name} exited; started again", flush=True)
    finally:
        stack.stop()
        (folder / "stack.env").unlink(missing_ok=True)
    return 0


def restart_env_file(folder: Path, name: str) -> Path:
    return folder / "restart-env" / f"{name}.json"


def set_restart_env(folder: Path, name: str, variables: Mapping[str, str]) -> None:
    """Variables the supervisor gives `name` (sensor, worker, warm-worker) the next time
    it starts it again: a bench stops the process to run it with another setting."""
    path = restart_env_file(folder, name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(dict(variables)))


def restart_env(folder: Path, name: str) -> dict[str, str]:
    path = restart_env_file(folder, name)
    return dict(json.loads(path.read_text())) if path.exists() else {}


def warm_worker_command() -> list[str]:
    return [PREFECT_CLI, "worker", "start", "--pool", WARM_WORK_POOL, "--type", "warm"]


def moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def local_aws_env(endpoint: str) -> dict[str, str]:
    """What boto3 needs to talk to a local moto server."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
    }


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """A moto server (S3 + SQS over HTTP) on a free loopback port; yields its AWS env."""
    port = free_port()
    process = subprocess.Popen(
        moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{endpoint}/moto-api/")
        yield local_aws_env(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_stack_env(folder: Path) -> dict[str, str]:
    """The endpoints of a running stack (raises FileNotFoundError when it is not up)."""
    lines = (folder / "stack.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def aws_client(env: Mapping[str, str], service: str) -> Any:
    """A boto3 client for the stack's moto server."""
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def prefect_client(env: Mapping[str, str]) -> SyncPrefectClient:
    """A client of the stack's Prefect API, with the stack's credential."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(
        api=env["PREFECT_API_URL"], auth_string=env.get("PREFECT_API_AUTH_STRING")
    )


def stack_command(
    command: str, folder: Path, engines: str = FAKE_ENGINES, database: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m local_stack <command>` for a stack folder (how tests and benches drive it).

    `database`: the Prefect server's (see local_stack.database); None: $PREFECT_DB or SQLite.
    """
    return subprocess.run(
        [sys.executable, "-m", "local_stack", command, "--dir", str(folder), "--engines", engines],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            UI_PORT_VARIABLE: "0",
            **({CHOICE_VARIABLE: database} if database else {}),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def stack_up(folder: Path, engines: str = FAKE_ENGINES) -> dict[str, str]:
    """Start a stack in `folder` (its output on stderr if it fails); its endpoints."""
    started = stack_command("up", folder, engines)
    if started.returncode != 0:
        print(started.stdout, started.stderr, file=sys.stderr)
        raise RuntimeError("the local stack failed to start")
    return read_stack_env(folder)

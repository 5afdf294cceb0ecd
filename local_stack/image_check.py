"""`make image-check`: build the images and run the pipeline's processes from them.

Against a local stack started without its own sensor and worker, the sensor and the
workers run as containers on the host network (no bridge): a video uploaded to the stack's
S3 ends in a DONE callback and a result object. Checked on the way: the image's health
check turns healthy, then unhealthy once the sensor stops; the containers do not run as
root; no secret of the stack appears in `docker inspect` or the image history (secrets
reach the containers in a read-only `/app/.env`, never as container variables).

Where Docker is missing, Debian's docker.io is installed and `dockerd` started with no
bridge and no iptables changes, then stopped at the end; where the base image cannot be
pulled, a stand-in is built from Debian packages (scripts/stand-in-base.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.demo import wait_for_final_state
from local_stack.sample_video import make_korean_speech_video
from local_stack.stack import (
    DEPLOYMENT,
    ISOLATED_DEPLOYMENT,
    REPO_ROOT,
    WARM_WORK_POOL,
    WORK_POOL,
    aws_client,
    free_port,
    prefect_client,
    read_stack_env,
    stack_command,
)

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
STAND_IN_BASE = "ai-video-processor-base:bookworm"
IMAGE = "ai-video-processor:0.1.0"
FULL_IMAGE = f"{IMAGE}-full"  # IMAGE is the cloud image
IMAGES = (IMAGE, FULL_IMAGE)
APP_UID = "10001"
K8S_DEPLOYMENT = "process-video/process-video-k8s"
USER = "image-check"
CONTAINER_PREFIX = "avp-image-check"
# Stack variables that name host paths, or that only the host's processes use.
HOST_ONLY = {"PREFECT_HOME", "APP_ROOT", "SENSOR_HEARTBEAT_FILE", "SENSOR_METRICS_HOST"}
SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "AUTH", "PASSWORD")
# The sensor polls every 2 s and counts as stalled after 8 s without a poll; the health
# check runs every 2 s: unhealthy about 12 s after it stops.
SENSOR_ENV = {"SQS_WAIT_TIME_SECONDS": "2", "SENSOR_STALL_SECONDS": "8"}
HEALTH_OPTIONS = ["--health-interval=2s", "--health-start-period=5s", "--health-retries=2"]
HEALTH_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 300.0
ENGINE_TIMEOUT_S = 60.0


def log(message: str) -> None:
    print(f"[image-check] {message}", flush=True)


def docker_cli() -> str:
    """The docker CLI the build script picks (one that builds with BuildKit)."""
    found = subprocess.run(
        ["sh", "-c", ". scripts/docker-cli.sh && echo $DOCKER"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


@dataclass
class Docker:
    cli: str
    started: list[str] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        result = subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])}: {result.stderr.strip()[-2000:]}")
        return result.stdout.strip()

    def ok(self, *args: str, timeout: float = 600) -> bool:
        result = subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        return result.returncode == 0

    def start(self, name: str, image: str, env: Mapping[str, str], *args: str) -> str:
        """A detached container on the host network (`args`: options, then the command)."""
        self.run("rm", "-f", name, check=False)
        variables = [f"--env={key}={value}" for key, value in env.items()]
        self.run("run", "--detach", "--name", name, "--network=host", *variables, *args)
        self.started.append(name)
        return name

    def remove_started(self) -> None:
        for name in reversed(self.started):
            self.run("rm", "-f", name, check=False)
        self.started.clear()


@contextmanager
def docker_engine(work: Path) -> Iterator[Docker]:
    """A reachable Docker engine; one started here (and docker.io installed) is stopped after."""
    if shutil.which("dockerd") is None:
        log("Docker is missing: installing Debian's docker.io")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=True,
            stdout=subprocess.DEVNULL,
        )
    docker = Docker(docker_cli())
    if docker.ok("info", timeout=20):
        yield docker
        return
    log("starting dockerd --bridge=none --iptables=false (containers use the host network)")
    with (work / "dockerd.log").open("ab") as daemon_log:
        daemon = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false"],
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        while not docker.ok("info", timeout=10):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start; see {work / 'dockerd.log'}")
            time.sleep(1)
        yield docker
    finally:
        log("stopping the dockerd started here")
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=ENGINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def base_image(docker: Docker, requested: str) -> str:
    """The requested base if present or pullable; else the Debian stand-in (built if needed)."""
    if docker.ok("image", "inspect", requested) or docker.ok("pull", requested, timeout=180):
        return requested
    if docker.ok("image", "inspect", STAND_IN_BASE):
        log(f"{requested} cannot be pulled: using the stand-in base {STAND_IN_BASE} built earlier")
        return STAND_IN_BASE
    log(f"{requested} cannot be pulled: building a stand-in base from Debian packages")
    subprocess.run(
        ["scripts/stand-in-base.sh", STAND_IN_BASE],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER": docker.cli},
        check=True,
    )
    return STAND_IN_BASE


def build_images(docker: Docker, base: str, work: Path) -> list[str]:
    """`make image`'s build; returns its summary lines (time and size of each target)."""
    result = subprocess.run(
        ["scripts/build-image.sh"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DOCKER": docker.cli,
            "BASE_IMAGE": base,
            "IMAGE_BUILD_LOG": str(work / "build.log"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the image build failed; see {work / 'build.log'}\n{result.stderr}")
    lines = result.stdout.strip().splitlines()
    for line in lines:
        log(line)
    return lines


def in_image(docker: Docker, image: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker.cli, "run", "--rm", "--network=host", image, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PYC_CHECK = """
import importlib.util, sys
import flows.process_video, sensors.sqs_sensor, operations.bootstrap, prefect.engine
import video_processor.chunking
stale = [m.__file__ for m in (flows.process_video, sensors.sqs_sensor, operations.bootstrap,
         prefect.engine, video_processor.chunking) if not __import__("os").path.exists(
         importlib.util.cache_from_source(m.__file__))]
sys.exit(f"no bytecode for {stale}" if stale else 0)
"""


def check_image(docker: Docker, image: str, *, offline_engines: bool) -> None:
    """Non-root, bytecode compiled, no build tools or pip, FFmpeg and the engines it should have."""
    user = docker.run("image", "inspect", "--format", "{{.Config.User}}", image)
    uid = in_image(docker, image, "id", "-u").stdout.strip()
    assert user == "app" and uid == APP_UID, f"{image} runs as {user!r} (uid {uid})"
    pyc = in_image(docker, image, "python", "-c", PYC_CHECK)
    assert pyc.returncode == 0, f"{image}: {pyc.stderr.strip()[-500:]}"
    tools = in_image(docker, image, "sh", "-c", "command -v gcc cc make nasm /opt/venv/bin/pip")
    assert tools.stdout.strip() == "", f"{image} has build tools: {tools.stdout.split()}"
    filters = in_image(docker, image, "ffmpeg", "-hide_banner", "-filters").stdout
    assert "afftdn" in filters and "highpass" in filters, f"{image}: FFmpeg lacks its filters"
    muxers = in_image(docker, image, "ffmpeg", "-hide_banner", "-muxers").stdout
    assert " s16le " in muxers, f"{image}: FFmpeg cannot write raw PCM"
    whisper = in_image(docker, image, "python", "-c", "import faster_whisper")
    assert (whisper.returncode == 0) is offline_engines, f"{image}: faster-whisper {whisper}"
    log(
        f"{image}: user app (uid {uid}), bytecode compiled, no build tools, FFmpeg ok, "
        f"offline engines {'included' if offline_engines else 'absent'}"
    )


def secrets_of(env: Mapping[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in env.items()
        if any(marker in key for marker in SECRET_MARKERS) and len(value) >= 8
    }


def check_no_secrets(docker: Docker, env: Mapping[str, str], targets: Sequence[str]) -> None:
    """No secret value in `docker inspect` of images and containers, nor in image history."""
    secret_values = secrets_of(env)
    texts = [docker.run("inspect", target) for target in targets]
    texts += [docker.run("history", "--no-trunc", image) for image in IMAGES]
    for text in texts:
        leaked = [key for key, value in secret_values.items() if value in text]
        assert not leaked, f"secrets visible to docker inspect/history: {leaked}"
        assert "BEGIN CERTIFICATE" not in text, "a CA bundle is part of an image's metadata"
    log(
        f"no secret ({len(secret_values)} checked) in docker inspect of {len(targets)} "
        "containers/images or in the image history"
    )


def container_env_file(env: Mapping[str, str], work: Path) -> Path:
    """The stack's settings as the containers' `/app/.env` (readable by the app user only)."""
    path = work / "app.env"
    lines = [f"{key}={value}\n" for key, value in sorted(env.items()) if key not in HOST_ONLY]
    path.write_text("".join(lines))
    os.chown(path, int(APP_UID), int(APP_UID))
    path.chmod(0o400)
    return path


@dataclass
class Check:
    docker: Docker
    env: dict[str, str]
    env_file: Path
    work: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def mount(self) -> str:
        return f"--volume={self.env_file}:/app/.env:ro"

    def one_off(self, *command: str) -> None:
        result = subprocess.run(
            [self.docker.cli, "run", "--rm", "--network=host", self.mount, IMAGE, *command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {(result.stdout + result.stderr)[-2000:]}")

    def health(self, name: str) -> str:
        return self.docker.run("inspect", "--format", "{{.State.Health.Status}}", name)

    def wait_for_health(self, name: str, wanted: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < HEALTH_TIMEOUT_S:
            if self.health(name) == wanted:
                return time.monotonic() - started
            if self.docker.run("inspect", "--format", "{{.State.Running}}", name) != "true":
                raise RuntimeError(f"{name} exited: {self.docker.run('logs', name, check=False)}")
            time.sleep(1)
        raise RuntimeError(f"{name} not {wanted} within {HEALTH_TIMEOUT_S:.0f} s")

    def start_sensor(self, label: str, isolated: str | None = None) -> str:
        """The sensor container; `isolated`: every upload goes to that deployment."""
        name = f"{CONTAINER_PREFIX}-sensor-{label}"
        env = {**SENSOR_ENV, "SENSOR_METRICS_PORT": str(free_port())}
        if isolated:
            env.update(ROUTE_MAX_WARM_BYTES="0", ISOLATED_VIDEO_DEPLOYMENT=isolated)
        self.docker.start(name, IMAGE, env, self.mount, *HEALTH_OPTIONS, IMAGE)
        self.wait_for_health(name, "healthy")
        uid = self.docker.run("exec", name, "id", "-u")
        assert uid == APP_UID, f"the sensor runs as uid {uid}"
        return name

    def stop_sensor(self, name: str) -> float:
        """Freeze the sensor's process (a hung sensor); the health check must notice."""
        pid = int(self.docker.run("inspect", "--format", "{{.State.Pid}}", name))
        os.kill(pid, signal.SIGSTOP)
        try:
            return self.wait_for_health(name, "unhealthy")
        finally:
            os.kill(pid, signal.SIGCONT)

    def upload(self, job_id: str) -> float:
        """Upload a sample video as a user would; returns when it started (monotonic)."""
        video = make_korean_speech_video(self.work / f"{job_id}.mp4")
        started = time.monotonic()
        aws_client(self.env, "s3").upload_file(
            str(video), self.env["VIDEO_BUCKET_NAME"], f"videos/{USER}/{job_id}.mp4"
        )
        return started

    def wait_for_done(self, job_id: str, started: float) -> tuple[float, str]:
        """Wait for the job's DONE callback and check its result object; (seconds, key)."""
        job = wait_for_final_state(self.env["BACKEND_BASE_URL"], job_id, RUN_TIMEOUT_S)
        elapsed = time.monotonic() - started
        final = job["final"]
        assert isinstance(final, dict), job
        assert final["status"] == "DONE", f"{job_id}: {final}"
        key = str(final["result_s3_key"])
        s3 = aws_client(self.env, "s3")
        body = s3.get_object(Bucket=self.env["RESULT_BUCKET_NAME"], Key=key)["Body"].read()
        result = json.loads(body)
        assert result["job_id"] == job_id and result["transcript_text"], result
        return elapsed, key

    def flow_run_of(self, job_id: str) -> str:
        """The id of the flow run the sensor created for a job (by its `job` parameter)."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        with prefect_client(self.env) as client:
            while time.monotonic() < deadline:
                for run in client.read_flow_runs(limit=50):
                    if run.parameters.get("job", {}).get("job_id") == job_id:
                        return str(run.id)
                time.sleep(1)
        raise RuntimeError(f"no flow run for {job_id} within {RUN_TIMEOUT_S:.0f} s")

    def through(self, label: str, isolated: str | None, worker: Sequence[str] | None) -> None:
        """The sensor and a worker as containers: a video from upload to DONE.

        `isolated` None: the upload takes the warm deployment. Without a worker the run is
        executed as a Kubernetes Job's pod would: the work-pool template's command in a
        container of its own.
        """
        sensor = self.start_sensor(label, isolated)
        if worker:
            self.docker.start(f"{CONTAINER_PREFIX}-{label}", IMAGE, {}, self.mount, IMAGE, *worker)
        job_id = f"{label}-{int(time.time())}"
        started = self.upload(job_id)
        if not worker:
            self.run_as_pod(self.flow_run_of(job_id))
        elapsed, key = self.wait_for_done(job_id, started)
        self.timings[label] = elapsed
        log(f"{label}: upload -> DONE in {elapsed:.1f} s (result {key})")
        self.docker.run("stop", sensor)  # kept for the `docker inspect` check

    def run_as_pod(self, flow_run_id: str) -> None:
        template = json.loads((REPO_ROOT / "deploy/k8s/work-pool-template.json").read_text())
        command = template["variables"]["properties"]["command"]["default"].split()
        log(f"pod: {' '.join(command)} for flow run {flow_run_id}")
        with (self.work / "pod.log").open("ab") as pod_log:
            subprocess.run(
                [
                    self.docker.cli,
                    "run",
                    "--rm",
                    "--network=host",
                    self.mount,
                    f"--env=PREFECT__FLOW_RUN_ID={flow_run_id}",
                    IMAGE,
                    *command,
                ],
                stdout=pod_log,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_S,
                check=True,
            )


def deploy_from_image(check: Check, names: Sequence[str]) -> None:
    """Deploy as the compose file's `setup` does: from the image, code under /app."""
    flags = [part for name in names for part in ("--name", name.split("/")[1])]
    check.one_off("prefect", "--no-prompt", "deploy", *flags)


def compose_note(docker: Docker) -> str:
    if docker.ok("compose", "version", timeout=20):
        return "compose: docker compose v2 is available, but this check does not run the stack"
    return "compose: no docker compose v2 here; the compose file is only schema-checked (make test)"


def image_size_mb(docker: Docker, image: str) -> float:
    return int(docker.run("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def run_checks(docker: Docker, work: Path, base_request: str, warm: bool) -> list[str]:
    started = time.monotonic()
    base = base_image(docker, base_request)
    built = build_images(docker, base, work)
    check_image(docker, IMAGE, offline_engines=False)
    check_image(docker, FULL_IMAGE, offline_engines=True)

    folder = work / "stack"
    command = [sys.executable, "-m", "local_stack", "up", "--dir", str(folder), "--engines"]
    up = subprocess.run(
        [*command, "fake", "--external-workers"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if up.returncode != 0:
        raise RuntimeError(f"the local stack did not start: {up.stdout}{up.stderr}")
    try:
        env = read_stack_env(folder)
        check = Check(docker, env, container_env_file(env, work), work)
        deployments = [DEPLOYMENT, ISOLATED_DEPLOYMENT, K8S_DEPLOYMENT]
        deploy_from_image(check, deployments)
        log(f"deployed {', '.join(deployments)} from the image (APP_ROOT=/app)")

        sensor = check.start_sensor("health")
        log(f"sensor container healthy (uid {APP_UID}); freezing its process")
        unhealthy_after = check.stop_sensor(sensor)
        log(f"health check unhealthy {unhealthy_after:.0f} s after the sensor stopped")
        docker.run("stop", sensor)

        worker = ("prefect", "worker", "start", "--pool")
        if warm:
            check.through("warm", None, (*worker, WARM_WORK_POOL, "--type", "warm"))
        else:
            log("warm worker: skipped (--no-warm)")
        check.through("process", ISOLATED_DEPLOYMENT, (*worker, WORK_POOL, "--type", "process"))
        check.through("k8s-pod", K8S_DEPLOYMENT, None)
        check_no_secrets(docker, env, [*docker.started, *IMAGES])
    finally:
        docker.remove_started()
        stack_command("down", folder)
    log(compose_note(docker))
    stand_in = "" if base == base_request else f" (stand-in: {base_request} cannot be pulled)"
    sizes = [f"image size {name}: {image_size_mb(docker, name):.0f} MB" for name in IMAGES]
    return [
        f"base image: {base}{stand_in}",
        *built,
        f"image-check took {time.monotonic() - started:.0f} s",
        *sizes,
        *[
            f"upload -> DONE through the containers ({label}): {seconds:.1f} s"
            for label, seconds in check.timings.items()
        ],
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.image_check")
    parser.add_argument("--dir", type=Path, default=Path(".local-image-check"))
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE", DEFAULT_BASE_IMAGE))
    parser.add_argument(
        "--no-warm", dest="warm", action="store_false", help="skip the warm worker's run"
    )
    args = parser.parse_args(argv)
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with docker_engine(work) as docker:
        summary = run_checks(docker, work, args.base_image, args.warm)
    print()
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

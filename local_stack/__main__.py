"""`python -m local_stack up|down|supervise [--dir DIR] [--engines auto|fake] [--db DB]`.

`--external-workers` starts no sensor and no worker (`make image-check` runs them as
containers).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from local_stack.database import CHOICE_VARIABLE, add_database_argument
from local_stack.stack import READY_TIMEOUT_S, STOP_TIMEOUT_S, supervise

STARTUP_TIMEOUT_S = 2 * READY_TIMEOUT_S + 60
LOG_TAIL_LINES = 40


def _pid_file(folder: Path) -> Path:
    return folder / "supervisor.pid"


def _running_pid(folder: Path) -> int | None:
    try:
        pid = int(_pid_file(folder).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def up(folder: Path, engines: str, database: str, external_workers: bool = False) -> int:
    """Start the supervisor in the background and wait until stack.env is written."""
    if _running_pid(folder) and (folder / "stack.env").exists():
        print(f"stack already running: {folder / 'stack.env'}")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    log = (folder / "logs" / "supervisor.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stack",
            "supervise",
            "--dir",
            str(folder),
            "--engines",
            engines,
            *(["--external-workers"] if external_workers else []),
        ],
        # Through the environment, not the command line: a database URL may hold a password.
        env={**os.environ, CHOICE_VARIABLE: database},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _pid_file(folder).write_text(str(process.pid))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if (folder / "stack.env").exists():
            print(f"stack ready: {folder / 'stack.env'}")
            return 0
        if process.poll() is not None:
            break
        time.sleep(0.5)
    print(f"the local stack failed to start; logs in {folder / 'logs'}:", file=sys.stderr)
    lines = (folder / "logs" / "supervisor.log").read_text(errors="replace").splitlines()
    print("\n".join(lines[-LOG_TAIL_LINES:]), file=sys.stderr)
    down(folder)
    return 1


def down(folder: Path) -> int:
    pid = _running_pid(folder)
    if pid is None:
        print("no stack running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S + 5
    while time.monotonic() < deadline and _running_pid(folder):
        time.sleep(0.2)
    if _running_pid(folder):
        os.killpg(pid, signal.SIGKILL)
    _pid_file(folder).unlink(missing_ok=True)
    print("stack stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack")
    parser.add_argument("command", choices=["up", "down", "supervise"])
    parser.add_argument("--dir", type=Path, default=Path(".local"))
    parser.add_argument(
        "--engines",
        choices=["auto", "fake"],
        default="auto",
        help="auto: local engines unless CLOVA/Claude keys are set; "
        "fake: CLOVA and Claude are the fake servers",
    )
    parser.add_argument(
        "--external-workers",
        action="store_true",
        help="start no sensor and no worker (they run elsewhere, e.g. as containers)",
    )
    add_database_argument(parser)
    args = parser.parse_args()
    folder = args.dir.resolve()
    if args.command == "up":
        return up(folder, args.engines, args.db, args.external_workers)
    if args.command == "down":
        return down(folder)
    return supervise(folder, args.engines, args.db, args.external_workers)


if __name__ == "__main__":
    sys.exit(main())

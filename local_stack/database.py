"""Where the local stack's Prefect server keeps its state.

- `sqlite` (the default): a file in the stack folder (`prefect/prefect.db`).
- `postgres`: a PostgreSQL server of the stack's own, from Debian's `postgresql` package
  (`scripts/install-system-deps.sh --postgres`), on 127.0.0.1 on a free port, with its
  data in `<stack folder>/postgres/data` (kept between `up`s, as the SQLite file is) and
  a random password in `<stack folder>/postgres/password`. PostgreSQL refuses to run as
  root, so under root it runs as the `postgres` system user the package creates.
- a `postgresql+asyncpg://user:password@host:port/db` URL: an existing database. The URL
  goes to the Prefect server's environment only, never to `stack.env` or a log.

The choice is `--db` or the `PREFECT_DB` environment variable (`make up PREFECT_DB=postgres`).
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SQLITE = "sqlite"
POSTGRES = "postgres"
EXTERNAL_POSTGRES = "external-postgres"
ASYNCPG_SCHEME = "postgresql+asyncpg://"
CHOICE_VARIABLE = "PREFECT_DB"
CONNECTION_URL_SETTING = "PREFECT_API_DATABASE_CONNECTION_URL"
DEBIAN_POSTGRES_ROOT = Path("/usr/lib/postgresql")
SERVER_ACCOUNT = "postgres"
ROLE = "prefect"
DATABASE_NAME = "prefect"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# The server gets no stack secrets: only what it needs to start.
SERVER_PROCESS_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def database_choice(value: str) -> str:
    """`--db`: sqlite, postgres or a postgresql+asyncpg:// URL (never echoed: it has a password)."""
    if value in (SQLITE, POSTGRES) or value.startswith(ASYNCPG_SCHEME):
        return value
    raise argparse.ArgumentTypeError(
        f"expected {SQLITE}, {POSTGRES} or a {ASYNCPG_SCHEME}user:password@host:port/db URL"
    )


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=database_choice,
        default=os.environ.get(CHOICE_VARIABLE) or SQLITE,
        help=f"the Prefect server's database: {SQLITE} (default), {POSTGRES} (a local server "
        f"the stack starts) or a {ASYNCPG_SCHEME} URL (better given as ${CHOICE_VARIABLE})",
    )


def database_kind(choice: str) -> str:
    """What a choice is, safe to log and to record: sqlite, postgres or external-postgres."""
    return choice if choice in (SQLITE, POSTGRES) else EXTERNAL_POSTGRES


def postgres_bin_dir(root: Path = DEBIAN_POSTGRES_ROOT) -> Path:
    """The binaries of the newest PostgreSQL Debian installed (`<root>/<version>/bin`)."""
    versions = [
        path
        for path in root.glob("*/bin")
        if path.parent.name.isdigit() and (path / "postgres").is_file()
    ]
    if not versions:
        raise RuntimeError(
            f"PostgreSQL is not installed (nothing in {root}/<version>/bin): "
            "run scripts/install-system-deps.sh --postgres"
        )
    return max(versions, key=lambda path: int(path.parent.name))


@dataclass(frozen=True)
class Account:
    """The user PostgreSQL runs as when the stack runs as root."""

    uid: int
    gid: int

    def popen_options(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def server_account() -> Account | None:
    """None: run as ourselves; under root, Debian's `postgres` user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root and there is no {SERVER_ACCOUNT!r} user: "
            "run scripts/install-system-deps.sh --postgres"
        ) from None
    return Account(uid=entry.pw_uid, gid=entry.pw_gid)


def can_enter(path: Path, account: Account) -> bool:
    """Whether `account` (with no supplementary groups) may search the directory."""
    info = path.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == account.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def open_path_for(folder: Path, account: Account) -> None:
    """Let `account` reach `folder`'s contents: the folder itself (the stack's own) gets search
    permission for others (not listing); a parent that bars it is the caller's to open."""
    for parent in reversed(folder.parents):
        if not can_enter(parent, account):
            raise RuntimeError(
                f"PostgreSQL runs as the {SERVER_ACCOUNT!r} user (it refuses root), which cannot "
                f"enter {parent}: choose a stack folder it can reach (--dir) or run "
                f"`chmod o+x {parent}`"
            )
    if not can_enter(folder, account):
        folder.chmod(folder.stat().st_mode | stat.S_IXOTH)


@dataclass
class LocalPostgres:
    """A PostgreSQL server of the stack's own: `initdb` once, then `postgres` on 127.0.0.1."""

    folder: Path
    log: Path
    port: int
    bin_dir: Path = field(default_factory=postgres_bin_dir)
    process: subprocess.Popen[bytes] | None = None
    started_in_s: float | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    def url(self, scheme: str = "postgresql://") -> str:
        password = self.password_file.read_text().strip()
        return f"{scheme}{ROLE}:{password}@127.0.0.1:{self.port}/{DATABASE_NAME}"

    def start(self) -> None:
        began = time.monotonic()
        account = server_account()
        self._prepare(account)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                account,
                "initdb",
                "-D",
                str(self.data),
                "-U",
                ROLE,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=scram-sha-256",
                f"--pwfile={self.password_file}",
            )
        elif self._run(account, "pg_ctl", "status", "-D", str(self.data), check=False) == 0:
            # Left running by a supervisor that was killed outright.
            self._run(account, "pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"port={self.port}",
                    "-c",
                    "unix_socket_directories=",
                ],
                cwd=self.folder,
                env=SERVER_PROCESS_ENV,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **(account.popen_options() if account else {}),
            )
        self._wait_until_ready(self.process)
        self._create_database()
        self.started_in_s = time.monotonic() - began

    def stop(self) -> None:
        """Fast shutdown (SIGINT: running transactions are rolled back), then harder."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, timeout_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, 5.0)):
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout_s)
                return
            except subprocess.TimeoutExpired:
                continue
        process.kill()
        process.wait()

    def _prepare(self, account: Account | None) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        if account:
            open_path_for(self.folder.parent, account)
            for path in (self.folder, self.password_file):
                os.chown(path, account.uid, account.gid)

    def _run(self, account: Account | None, tool: str, *args: str, check: bool = True) -> int:
        with self.log.open("ab") as log:
            return subprocess.run(
                [str(self.bin_dir / tool), *args],
                cwd=self.folder,
                env=SERVER_PROCESS_ENV,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=check,
                **(account.popen_options() if account else {}),
            ).returncode

    def _client(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / tool), "-h", "127.0.0.1", "-p", str(self.port), *args],
            env={**SERVER_PROCESS_ENV, "PGPASSWORD": self.password_file.read_text().strip()},
            capture_output=True,
            text=True,
            check=False,
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}; see {self.log}")
            if self._client("pg_isready", "-q", "-U", ROLE, "-d", "postgres").returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections within {READY_TIMEOUT_S:.0f} s")

    def _create_database(self) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"
        found = self._client("psql", "-U", ROLE, "-d", "postgres", "-tAc", query)
        if found.returncode != 0:
            raise RuntimeError(f"postgres: {found.stderr.strip()}")
        if found.stdout.strip() != "1":
            created = self._client("createdb", "-U", ROLE, DATABASE_NAME)
            if created.returncode != 0:
                raise RuntimeError(f"postgres: createdb failed: {created.stderr.strip()}")


def postgres_folder(stack_folder: Path) -> Path:
    return stack_folder / "postgres"


def postgres_server_pid(stack_folder: Path) -> int | None:
    """The running local PostgreSQL's main process (its backends are its children)."""
    try:
        return int(
            (postgres_folder(stack_folder) / "data" / "postmaster.pid").read_text().split()[0]
        )
    except (FileNotFoundError, IndexError, ValueError):
        return None


@dataclass
class PrefectDatabase:
    """The Prefect server's database for one stack: chosen, started, stopped."""

    choice: str
    folder: Path
    postgres: LocalPostgres | None = None

    @property
    def kind(self) -> str:
        return database_kind(self.choice)

    def start(self, sqlite_file: Path, log: Path, port: int) -> dict[str, str]:
        """Start what the choice needs; returns the Prefect server's database setting."""
        if self.choice == SQLITE:
            return {CONNECTION_URL_SETTING: f"sqlite+aiosqlite:///{sqlite_file}"}
        if self.choice != POSTGRES:
            return {CONNECTION_URL_SETTING: self.choice}
        self.postgres = LocalPostgres(postgres_folder(self.folder), log, port)
        self.postgres.start()
        print(f"postgres ready on port {port} in {self.postgres.started_in_s:.1f} s", flush=True)
        return {CONNECTION_URL_SETTING: self.postgres.url(ASYNCPG_SCHEME)}

    def stack_env(self) -> dict[str, str]:
        """What stack.env says about the database (the local server's URL, for psql)."""
        env = {CHOICE_VARIABLE: self.kind}
        if self.postgres is not None:
            env["POSTGRES_URL"] = self.postgres.url()
        return env

    def stop(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()

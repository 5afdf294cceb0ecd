"""The Prefect server's database choice and the stack's own PostgreSQL (started for real)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.database import (
    CONNECTION_URL_SETTING,
    EXTERNAL_POSTGRES,
    POSTGRES,
    SQLITE,
    Account,
    LocalPostgres,
    PrefectDatabase,
    add_database_argument,
    database_choice,
    database_kind,
    open_path_for,
    postgres_bin_dir,
    postgres_server_pid,
)
from local_stack.stack import free_port

# Read at import, before the suite points TMPDIR at a folder of its own (0700).
SYSTEM_TMP = tempfile.gettempdir()
EXTERNAL_URL = "postgresql+asyncpg://prefect:s3cret-pw@db.internal:5432/prefect"


@pytest.fixture
def stack_folder() -> Iterator[Path]:
    # Not tmp_path: under root PostgreSQL runs as `postgres`, which cannot enter pytest's
    # (or the suite's) 0700 temporary folders.
    folder = Path(tempfile.mkdtemp(prefix="postgres-test-", dir=SYSTEM_TMP))
    (folder / "logs").mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_database_choice_takes_sqlite_postgres_or_an_asyncpg_url() -> None:
    assert [database_choice(value) for value in (SQLITE, POSTGRES, EXTERNAL_URL)] == [
        SQLITE,
        POSTGRES,
        EXTERNAL_URL,
    ]
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        database_choice("postgresql://prefect:s3cret-pw@db.internal/prefect")
    assert "s3cret-pw" not in str(refused.value)


def test_the_db_option_defaults_to_prefect_db_then_sqlite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def parse(*argv: str) -> str:
        parser = argparse.ArgumentParser()
        add_database_argument(parser)
        return str(parser.parse_args(argv).db)

    monkeypatch.delenv("PREFECT_DB", raising=False)
    assert parse() == SQLITE
    monkeypatch.setenv("PREFECT_DB", POSTGRES)
    assert parse() == POSTGRES
    assert parse("--db", EXTERNAL_URL) == EXTERNAL_URL
    with pytest.raises(SystemExit):
        parse("--db", "mysql://root:s3cret-pw@db/x")
    assert "s3cret-pw" not in capsys.readouterr().err


def test_an_external_url_reaches_the_server_but_never_stack_env(tmp_path: Path) -> None:
    database = PrefectDatabase(EXTERNAL_URL, tmp_path)
    assert database.start(tmp_path / "prefect.db", tmp_path / "pg.log", port=1) == {
        CONNECTION_URL_SETTING: EXTERNAL_URL
    }
    assert database.stack_env() == {"PREFECT_DB": EXTERNAL_POSTGRES}
    assert database_kind(EXTERNAL_URL) == EXTERNAL_POSTGRES


def test_sqlite_is_pinned_to_the_stack_folder(tmp_path: Path) -> None:
    database = PrefectDatabase(SQLITE, tmp_path)
    setting = database.start(tmp_path / "prefect" / "prefect.db", tmp_path / "pg.log", port=1)
    assert setting == {CONNECTION_URL_SETTING: f"sqlite+aiosqlite:///{tmp_path}/prefect/prefect.db"}
    assert database.stack_env() == {"PREFECT_DB": SQLITE}


def test_the_newest_installed_postgresql_is_used(tmp_path: Path) -> None:
    for version in ("13", "15", "9", "common"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "postgres").touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # client only: no server binary
    assert postgres_bin_dir(tmp_path) == tmp_path / "15" / "bin"
    with pytest.raises(RuntimeError, match=re.escape("install-system-deps.sh --postgres")):
        postgres_bin_dir(tmp_path / "none")


def test_the_server_account_is_given_a_way_into_the_stack_folder_only(
    stack_folder: Path,
) -> None:
    other = Account(uid=os.getuid() + 4242, gid=os.getgid() + 4242)
    parent, folder = stack_folder / "parent", stack_folder / "parent" / "stack"
    folder.mkdir(parents=True)
    stack_folder.chmod(0o755)
    parent.chmod(0o700)
    with pytest.raises(RuntimeError, match=re.escape(f"cannot enter {parent}")):
        open_path_for(folder, other)
    parent.chmod(0o711)
    folder.chmod(0o700)
    open_path_for(folder, other)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o701


def new_server(folder: Path) -> LocalPostgres:
    return LocalPostgres(folder / "postgres", folder / "logs" / "postgres.log", free_port())


def psql(server: LocalPostgres, sql: str) -> str:
    done = subprocess.run(
        [str(server.bin_dir / "psql"), server.url(), "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_local_postgres_keeps_its_data_across_restarts_and_stops_for_good(
    stack_folder: Path,
) -> None:
    first = new_server(stack_folder)
    first.start()
    try:
        assert first.process is not None
        assert postgres_server_pid(stack_folder) == first.process.pid
        assert psql(first, "SELECT current_database() || ' ' || current_user") == "prefect prefect"
        assert psql(first, "SHOW listen_addresses") == "127.0.0.1"
        psql(first, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    finally:
        first.stop()
    assert first.process is not None and first.process.returncode == 0
    assert postgres_server_pid(stack_folder) is None
    assert not accepts_connections(first.port)
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600

    second = new_server(stack_folder)
    second.start()
    try:
        assert psql(second, "SELECT n FROM kept") == "7"
    finally:
        second.stop()


def test_a_server_left_running_by_a_killed_supervisor_is_stopped_before_the_next_start(
    stack_folder: Path,
) -> None:
    orphan = new_server(stack_folder)
    orphan.start()
    successor = new_server(stack_folder)
    try:
        successor.start()
        assert orphan.process is not None and orphan.process.wait(timeout=5) == 0
        assert psql(successor, "SELECT 1") == "1"
    finally:
        successor.stop()
        orphan.stop()

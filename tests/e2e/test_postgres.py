"""End to end on PostgreSQL: `up --db postgres`, one video to DONE, `down` stops PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from local_stack.database import POSTGRES, postgres_bin_dir
from local_stack.sample_video import make_tone_video
from local_stack.stack import read_stack_env, stack_command
from tests.e2e.stack_client import StackClient, new_job_id, wait_for_run_state

pytestmark = pytest.mark.e2e
# Read at import, before the suite points TMPDIR at a folder of its own (0700).
SYSTEM_TMP = tempfile.gettempdir()


def psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(postgres_bin_dir() / "psql"), url, "-tAc", sql],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_stack_on_postgres_runs_a_video_to_done_and_down_stops_postgres(
    tmp_path: Path,
) -> None:
    # Not tmp_path: under root PostgreSQL runs as `postgres`, which cannot enter pytest's
    # (or the suite's) 0700 temporary folders.
    folder = Path(tempfile.mkdtemp(prefix="postgres-stack-", dir=SYSTEM_TMP))
    try:
        started = stack_command("up", folder, database=POSTGRES)
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
        stack = StackClient(env=read_stack_env(folder), folder=folder)
        assert stack.env["PREFECT_DB"] == POSTGRES
        job_id = new_job_id()
        stack.upload(make_tone_video(tmp_path / "talk.mp4", seconds=8), f"videos/u1/{job_id}.mp4")

        final = stack.wait_for_callbacks(job_id)["final"]

        assert final["status"] == "DONE", final
        [run] = wait_for_run_state(stack, f"job-{job_id}", StateType.COMPLETED)
        stored = psql(
            stack.env["POSTGRES_URL"], f"SELECT state_type FROM flow_run WHERE id = '{run.id}'"
        )
        assert stored.stdout.strip() == "COMPLETED", stored.stderr
        assert not (folder / "prefect" / "prefect.db").exists()
    finally:
        stack_command("down", folder)
        stopped = not (folder / "postgres" / "data" / "postmaster.pid").exists()
        shutil.rmtree(folder, ignore_errors=True)
    assert stopped
    assert psql(stack.env["POSTGRES_URL"], "SELECT 1").returncode != 0

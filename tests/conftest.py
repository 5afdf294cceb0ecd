"""Fixtures that start real local services: a moto server, or the whole local stack."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.stack import (
    aws_client,
    moto_server,
    read_stack_env,
    stack_command,
)
from tests.e2e.stack_client import StackClient

SUITE_TMP_PREFIX = "avp-tests-"


@pytest.fixture(scope="session", autouse=True)
def _suite_tmpdir() -> Iterator[Path]:
    """One temporary folder for the whole suite and every process it starts (TMPDIR), removed
    at the end: a worker killed mid-task cannot leave its scratch folders behind."""
    root = Path(tempfile.mkdtemp(prefix=SUITE_TMP_PREFIX))
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(root))
    patch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        patch.undo()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_env() -> Iterator[dict[str, str]]:
    """A moto server (S3 + SQS over HTTP) on a free loopback port."""
    with moto_server() as env:
        yield env


@pytest.fixture
def s3_client(moto_env: dict[str, str]) -> Any:
    return aws_client(moto_env, "s3")


@pytest.fixture
def sqs_client(moto_env: dict[str, str]) -> Any:
    return aws_client(moto_env, "sqs")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackClient]:
    folder = tmp_path_factory.mktemp("stack")
    started = stack_command("up", folder)
    if started.returncode != 0:
        pytest.fail(f"local stack failed to start:\n{started.stdout}\n{started.stderr}")
    try:
        yield StackClient(env=read_stack_env(folder), folder=folder)
    finally:
        stack_command("down", folder)


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    """Faults injected into a fake by one test never leak into the next.

    The backend keeps its records (module fixtures submit jobs that later tests check);
    tests inject backend faults only for their own job's path.
    """
    if "stack" in request.fixturenames:
        client: StackClient = request.getfixturevalue("stack")
        for name in ("clova", "clova-speech", "anthropic"):
            client.reset(name)

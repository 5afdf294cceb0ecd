"""Fixtures shared by the fake-service tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+)\n")
STOP_TIMEOUT_S = 10

CliRunner = Callable[..., AbstractContextManager[str]]


@contextmanager
def _run_cli(module: str, *args: str) -> Iterator[str]:
    """Run ``python -m <module> --port 0 <args>``, yield its URL, then SIGTERM it; exit 0."""
    with subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = LISTENING_LINE.fullmatch(line)
            assert match, line
            yield match[1]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=STOP_TIMEOUT_S) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture
def run_cli() -> CliRunner:
    """Start a fake's command line as a child process (see ``_run_cli``)."""
    return _run_cli

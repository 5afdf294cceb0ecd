"""The suite keeps its temporary files in one folder that it removes at the end."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import SUITE_TMP_PREFIX


def test_temporary_folders_of_the_suite_and_its_processes_share_one_root():
    root = Path(tempfile.gettempdir())
    assert root.name.startswith(SUITE_TMP_PREFIX)
    assert os.environ["TMPDIR"] == str(root)
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == str(root)

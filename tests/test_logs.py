"""JSON logging: every line a process writes through it is one JSON object."""

import json
import subprocess
import sys

PROGRAM = """
import warnings
from video_processor.logs import configure_json_logging, get_logger
configure_json_logging("INFO")
get_logger("sensor").info("started", extra={"stage": "SENSOR_START"})
warnings.warn("a library is unhappy", UserWarning)
"""


def test_python_warnings_are_json_lines_like_the_logs():
    completed = subprocess.run(
        [sys.executable, "-W", "default", "-c", PROGRAM],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in completed.stderr.splitlines()]
    assert completed.stdout == ""
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("video_processor.sensor", "INFO"),
        ("py.warnings", "WARNING"),
    ]
    assert "UserWarning: a library is unhappy" in lines[1]["message"]

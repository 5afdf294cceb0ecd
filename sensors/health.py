"""Container health check: `python -m sensors.health` fails when polling has stalled.

The sensor touches its heartbeat file after every successful poll; a file older than
SENSOR_STALL_SECONDS (or missing) means the loop is stuck or failing. The sensor's
`/healthz` endpoint (sensors/metrics.py) answers from the same check.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from video_processor.config import Settings, load_settings


@dataclass(frozen=True)
class Health:
    healthy: bool
    message: str


def heartbeat_health(heartbeat_file: Path, stall_seconds: float) -> Health:
    """Healthy while the last successful poll is at most `stall_seconds` old."""
    try:
        age_s = time.time() - heartbeat_file.stat().st_mtime
    except FileNotFoundError:
        return Health(False, f"unhealthy: no heartbeat at {heartbeat_file}")
    if age_s > stall_seconds:
        return Health(False, f"unhealthy: last successful poll {age_s:.0f} s ago")
    return Health(True, f"healthy: last successful poll {age_s:.0f} s ago")


def sensor_health(settings: Settings) -> Health:
    return heartbeat_health(settings.sensor_heartbeat_file, settings.sensor_stall_seconds)


def main() -> int:
    health = sensor_health(load_settings())
    print(health.message)
    return 0 if health.healthy else 1


if __name__ == "__main__":
    sys.exit(main())

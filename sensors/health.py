"""Container health check: `python -m sensors.health` fails when polling has stalled.

The sensor touches its heartbeat file after every successful poll; a file older than
SENSOR_STALL_SECONDS (or missing) means the loop is stuck or failing.
"""

from __future__ import annotations

import sys
import time

from video_processor.config import load_settings


def main() -> int:
    settings = load_settings()
    try:
        age_s = time.time() - settings.sensor_heartbeat_file.stat().st_mtime
    except FileNotFoundError:
        print(f"unhealthy: no heartbeat at {settings.sensor_heartbeat_file}")
        return 1
    if age_s > settings.sensor_stall_seconds:
        print(f"unhealthy: last successful poll {age_s:.0f} s ago")
        return 1
    print(f"healthy: last successful poll {age_s:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Re-drive the dead-letter queue: `python -m sensors.redrive [--dry-run]`.

Every message of the ingest queue's dead-letter queue (the one its RedrivePolicy names) is
read once: the valid S3 events go back to the ingest queue, where the sensor starts their
runs (the idempotency key maps an event whose run exists onto that run); anything else is
kept, visible again, with the reason logged. ``--dry-run`` moves nothing. The report
(message ids re-driven and kept, with why) is printed as JSON on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from prefect_aws import AwsCredentials

from blocks import load_block
from sensors.sqs_sensor import queue_command_settings
from video_processor.dead_letters import dead_letter_queue_url, redrive


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="report, move nothing")
    args = parser.parse_args(argv)
    settings = queue_command_settings()
    queue_url = str(settings.sqs_queue_url)
    sqs = load_block(AwsCredentials, settings.blocks.aws_credentials).get_client("sqs")
    dlq_url = dead_letter_queue_url(sqs, queue_url)
    if dlq_url is None:
        print(f"{queue_url} has no RedrivePolicy: no dead-letter queue", file=sys.stderr)
        return 2
    report = redrive(sqs, queue_url, dlq_url, dry_run=args.dry_run)
    print(json.dumps(dataclasses.asdict(report), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
from video_processor.config import load_settings
from video_processor.dead_letters import dead_letter_queue_url, redrive
from video_processor.errors import ConfigurationError
from video_processor.logs import configure_json_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="report, move nothing")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if not settings.sqs_queue_url:
            raise ConfigurationError("invalid configuration: SQS_QUEUE_URL is not set")
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_json_logging(settings.log_level)
    sqs = load_block(AwsCredentials, settings.blocks.aws_credentials).get_client("sqs")
    dlq_url = dead_letter_queue_url(sqs, settings.sqs_queue_url)
    if dlq_url is None:
        print(
            f"{settings.sqs_queue_url} has no RedrivePolicy: no dead-letter queue", file=sys.stderr
        )
        return 2
    report = redrive(sqs, settings.sqs_queue_url, dlq_url, dry_run=args.dry_run)
    print(json.dumps(dataclasses.asdict(report), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""JSON logs, one object a line, with the job's identity and its stage names."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "video_processor"
WARNINGS_LOGGER_NAME = "py.warnings"
# Attributes every LogRecord has; anything else was passed through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: timestamp, level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_json_logging(level: str = "INFO") -> None:
    """Send this package's logs, and Python warnings, to stderr as JSON lines (idempotent).

    Propagation stops here so Prefect's console handler does not print them a second
    time; Prefect's API handler (PREFECT_LOGGING_EXTRA_LOGGERS) still ships them to the UI.
    Warnings (``warnings.warn``, e.g. a library's UserWarning) become records of the
    ``py.warnings`` logger instead of bare text lines.
    """
    logging.captureWarnings(True)
    for name, logger_level in ((LOGGER_NAME, level), (WARNINGS_LOGGER_NAME, "WARNING")):
        logger = logging.getLogger(name)
        logger.setLevel(logger_level)
        logger.propagate = False
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def job_fields(job_id: str, user_id: str) -> dict[str, str]:
    return {"job_id": job_id, "user_id": user_id}


def log_stage(
    logger: logging.Logger, stage: str, context: Mapping[str, Any], **fields: Any
) -> None:
    logger.info(stage, extra={"stage": stage, **context, **fields})


@contextmanager
def stage(
    logger: logging.Logger, name: str, context: Mapping[str, Any], **fields: Any
) -> Iterator[dict[str, Any]]:
    """Log `{name}_START`, then `{name}_DONE` with `duration_ms` and whatever the body adds."""
    log_stage(logger, f"{name}_START", context, **fields)
    started = time.monotonic()
    done_fields: dict[str, Any] = {}
    yield done_fields
    duration_ms = int((time.monotonic() - started) * 1000)
    log_stage(logger, f"{name}_DONE", context, duration_ms=duration_ms, **done_fields)
    done_fields["duration_ms"] = duration_ms

"""The `resend-callbacks` flow: deliver every recorded callback the backend never got.

Run it after a backend outage (`python -m flows.resend_callbacks`, or as a deployment):
no job runs again; each callback keeps its delivery id.
"""

from __future__ import annotations

from prefect import flow

from blocks import BackendCallback, load_block
from flows.runtime import s3_client
from video_processor import outbox
from video_processor.config import load_settings
from video_processor.errors import CallbackError
from video_processor.logs import configure_json_logging, get_logger, job_fields, log_stage

logger = get_logger("resend")


@flow(name="resend-callbacks")
def resend_callbacks(prefix: str = "results/") -> int:
    """Deliver pending callbacks under the prefix; returns how many were delivered."""
    settings = load_settings()
    configure_json_logging(settings.log_level)
    client = s3_client()
    backend = load_block(BackendCallback, settings.blocks.backend).get_client()
    delivered = 0
    try:
        for delivery in outbox.pending(client, settings.result_bucket_name, prefix):
            context = {
                **job_fields(delivery.job_id, delivery.user_id),
                "delivery_id": delivery.delivery_id,
                "resend": True,
            }
            try:
                status = outbox.deliver(client, settings.result_bucket_name, backend, delivery)
            except CallbackError as exc:
                log_stage(logger, "CALLBACK_FAILED", context, error=exc.message)
                continue
            delivered += 1
            log_stage(logger, "CALLBACK_SUCCESS", context, http_status=status)
    finally:
        backend.close()
    return delivered


if __name__ == "__main__":
    resend_callbacks()

"""One slot of an engine's Prefect global concurrency limit, held for one request.

A run takes a slot for every STT chunk and for its summary. Prefect's `concurrency()`
context manager costs, for each use, a new API client to release the slot and a thread
with another client that renews the lease at once and then every 225 s, plus two
events: per run, more API calls and client set-ups than the rest of its orchestration.
`engine_slot` holds the same slot with the same lease through the run's own API client.
It is acquired one request at a time per limit in a process, as Prefect's acquisition
service queues them (concurrent writes make a SQLite-backed server answer 503), waiting
while the limit is full, as Prefect does; renewed only if the work outlasts three
quarters of the lease; released on exit. A lease that is never released (the process
died) frees its slot when it expires.

A busy server's 503 is asked again shortly (`flows.prefect_api`), the pause taken outside
the one-at-a-time lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.context import TaskRunContext

from flows import cancellation
from flows.prefect_api import briefly_retried
from video_processor.logs import get_logger

logger = get_logger("slots")
LEASE_SECONDS = 300.0
RENEW_AFTER_FRACTION = 0.75
DEFAULT_WAIT_SECONDS = 1.0  # when a full limit's 423 has no Retry-After
_requests_in_flight: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


@contextmanager
def engine_slot(limit_name: str) -> Iterator[None]:
    """Hold one slot of `limit_name` (which must exist) while the block runs."""
    with get_client(sync_client=True) as client:  # in a run: the run's own client
        lease_id = _acquire(client, limit_name)
        renewal = _LeaseRenewal(lease_id)
        try:
            yield
        finally:
            renewal.stop()
            try:
                client.release_concurrency_slots_with_lease(lease_id)
            except httpx.HTTPError:
                logger.warning(
                    "could not release a concurrency slot; it is freed when its lease ends",
                    extra={"limit": limit_name, "lease_id": str(lease_id)},
                    exc_info=True,
                )


def _acquire(client: SyncPrefectClient, limit_name: str) -> UUID:
    context = TaskRunContext.get()
    holder = (
        ConcurrencyLeaseHolder(type="task_run", id=context.task_run.id)
        if context is not None
        else None
    )
    with _registry_lock:
        one_at_a_time = _requests_in_flight.setdefault(limit_name, threading.Lock())

    def request() -> httpx.Response:
        with one_at_a_time:  # a busy answer's pause is taken outside: others go meanwhile
            return client.increment_concurrency_slots_with_lease(
                names=[limit_name],
                slots=1,
                mode="concurrency",
                lease_duration=LEASE_SECONDS,
                holder=holder,
            )

    while True:
        try:
            response = briefly_retried(request)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != httpx.codes.LOCKED:
                raise ConcurrencySlotAcquisitionError(
                    f"Unable to acquire a slot of {limit_name!r}: {exc.response.status_code}"
                ) from exc
            cancellation.raise_if_requested()  # a cancelled run stops waiting
            time.sleep(float(exc.response.headers.get("Retry-After", DEFAULT_WAIT_SECONDS)))
            continue
        granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        if not granted.limits:
            raise ConcurrencySlotAcquisitionError(
                f"the concurrency limit {limit_name!r} must be created before a run uses it"
            )
        return granted.lease_id


class _LeaseRenewal:
    """Renews a lease every three quarters of its duration until stopped; its thread
    opens an API client only when a renewal is due."""

    def __init__(self, lease_id: UUID) -> None:
        self._lease_id = lease_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        interval = LEASE_SECONDS * RENEW_AFTER_FRACTION
        while not self._stopped.wait(interval):
            try:
                with get_client(sync_client=True) as client:
                    client.renew_concurrency_lease(self._lease_id, lease_duration=LEASE_SECONDS)
            except httpx.HTTPError:
                logger.warning(
                    "could not renew a concurrency lease; the limit may be exceeded",
                    extra={"lease_id": str(self._lease_id)},
                    exc_info=True,
                )

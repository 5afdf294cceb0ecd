"""An in-process runner: one long-lived process runs a deployment's flow runs in threads.

Prefect's process worker and `flow.serve()` both start a new Python process for every
flow run (the process worker: `python -m prefect.runner._workspace_supervisor`, or
`python -m prefect.engine` when the job variable `command` says so), and each pays for
`import prefect` and the engine's start-up again. This runner does what the
process worker does, minus the process:

- poll the work pool for scheduled runs (`get_scheduled_flow_runs_for_work_pool`, as the
  worker does every PREFECT_WORKER_QUERY_SECONDS), keeping the runs of one deployment;
- claim a run by proposing Pending (the server applies the deployment's concurrency
  limit there, exactly as for the worker: a run over the limit stays Scheduled as
  AwaitingConcurrencySlot);
- execute it with Prefect's own engine, `prefect.flow_engine.run_flow(flow, flow_run=...)`,
  in a thread of a pool of `--threads` (default: the deployment's concurrency limit).

The flow is loaded once from the deployment's entrypoint, in the deployment's working
directory (APP_ROOT); the deployment's job-variable `env` must already be in this
process's environment (the throughput bench passes it). Prefect's run context lives in
context variables, so flow runs in different threads do not share it; the engine
installs no signal handler outside the main thread. A run whose engine raises before
reaching a final state is proposed Crashed (the crash automation then handles it).
SIGTERM/SIGINT: stop claiming, let the runs in hand finish, exit.

Run: ``python -m bench.inprocess_runner --pool local-process
--deployment process-video/process-video-local``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.states import Crashed, Pending
from prefect.utilities.engine import propose_state_sync

from video_processor.config import load_settings
from video_processor.logs import configure_json_logging

logger = logging.getLogger("bench.inprocess_runner")
DEFAULT_THREADS = 16
POLL_S = 1.0


class InProcessRunner:
    def __init__(
        self, client: SyncPrefectClient, pool: str, deployment_id: UUID, flow: Flow[..., Any]
    ) -> None:
        self.client = client
        self.pool = pool
        self.deployment_id = deployment_id
        self.flow = flow
        self.stopping = threading.Event()
        self.in_hand: set[UUID] = set()
        self.lock = threading.Lock()
        self.started = 0

    def free_threads(self, threads: int) -> int:
        with self.lock:
            return threads - len(self.in_hand)

    def poll_once(self, executor: ThreadPoolExecutor, threads: int) -> int:
        """Claim and start as many scheduled runs as there are free threads."""
        free = self.free_threads(threads)
        if free <= 0:
            return 0
        responses = self.client.get_scheduled_flow_runs_for_work_pool(
            self.pool, scheduled_before=datetime.now(UTC)
        )
        claimed = 0
        for response in responses:
            flow_run = response.flow_run
            if claimed >= free or self.stopping.is_set():
                break
            if flow_run.deployment_id != self.deployment_id or flow_run.id in self.in_hand:
                continue
            if not self.claim(flow_run.id):
                continue
            with self.lock:
                self.in_hand.add(flow_run.id)
            executor.submit(self.execute, flow_run.id)
            claimed += 1
        return claimed

    def claim(self, flow_run_id: UUID) -> bool:
        try:
            state = propose_state_sync(self.client, Pending(), flow_run_id=flow_run_id)
        except Abort:
            return False  # another worker claimed it, or it was cancelled
        return state.is_pending()

    def execute(self, flow_run_id: UUID) -> None:
        try:
            with get_client(sync_client=True) as client:
                flow_run = client.read_flow_run(flow_run_id)
                with self.lock:
                    self.started += 1
                try:
                    run_flow(self.flow, flow_run=flow_run, return_type="state", error_logger=logger)
                except BaseException as exc:
                    logger.exception("flow run %s crashed in its thread", flow_run_id)
                    message = f"the in-process runner's thread raised {exc!r}"
                    try:
                        propose_state_sync(client, Crashed(message=message), flow_run_id)
                    except Exception:
                        logger.exception("could not mark flow run %s Crashed", flow_run_id)
        finally:
            with self.lock:
                self.in_hand.discard(flow_run_id)

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inprocess_runner", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pool", required=True, help="the work pool to poll")
    parser.add_argument("--deployment", required=True, help="flow-name/deployment-name")
    parser.add_argument("--threads", type=int, default=None, help="concurrent flow runs")
    parser.add_argument("--poll-seconds", type=float, default=POLL_S)
    args = parser.parse_args(argv)
    # Once, before any thread: the flow configures the same (idempotent) logging per run.
    configure_json_logging(load_settings().log_level)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(args.deployment)
        if deployment.entrypoint is None:
            raise SystemExit(f"deployment {args.deployment} has no entrypoint")
        flow: Flow[..., Any] = load_flow_from_entrypoint(
            deployment.entrypoint, use_placeholder_flow=False
        )
        limit = deployment.global_concurrency_limit
        threads = args.threads or (limit.limit if limit else DEFAULT_THREADS)
        runner = InProcessRunner(client, args.pool, deployment.id, flow)
        signal.signal(signal.SIGTERM, runner.stop)
        signal.signal(signal.SIGINT, runner.stop)
        print(f"ready: {args.deployment} on pool {args.pool}, {threads} threads", flush=True)
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flow-run") as executor:
            while not runner.stopping.wait(args.poll_seconds):
                try:
                    runner.poll_once(executor, threads)
                except Exception:
                    logger.exception("poll failed")
        print(f"stopped after starting {runner.started} flow runs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

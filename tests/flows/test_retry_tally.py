"""Task retries of a flow run, counted for the usage ledger."""

import uuid

from prefect.client.schemas.objects import TaskRun
from prefect.states import Completed

from flows.retry_tally import count_retries, retries_of


def finished(flow_run_id: uuid.UUID | None, run_count: int) -> None:
    task_run = TaskRun(task_key="k", dynamic_key="0", flow_run_id=flow_run_id, run_count=run_count)
    count_retries(None, task_run, Completed())  # type: ignore[arg-type]


def test_retries_are_summed_per_flow_run_then_forgotten():
    run, other = uuid.uuid4(), uuid.uuid4()
    finished(run, 1)  # first attempt succeeded: no retry
    finished(run, 3)
    finished(run, 2)
    finished(other, 4)
    finished(None, 5)  # a task outside any flow run
    assert retries_of(str(run)) == 3
    assert retries_of(str(run)) == 0
    assert retries_of(str(other)) == 3

"""The flow's deadline: JOB_TIMEOUT_SECONDS ends a job with the code of the stage it was in."""

import time

import pytest
from prefect._internal.concurrency.cancellation import CancelledError

from flows.process_video import job_deadline
from video_processor.errors import ErrorCode, PipelineError, error_code_of


@pytest.mark.parametrize(
    ("stage", "code"),
    [
        ("audio", ErrorCode.FFMPEG_FAILED),
        ("stt", ErrorCode.STT_TIMEOUT),
        ("llm", ErrorCode.LLM_TIMEOUT),
        ("result", ErrorCode.UNKNOWN_ERROR),
    ],
)
def test_a_job_over_its_deadline_fails_with_its_stage_code(stage: str, code: ErrorCode):
    with pytest.raises(PipelineError) as raised, job_deadline(0.2) as progress:
        progress.stage = stage
        time.sleep(5)
    assert error_code_of(raised.value) is code
    assert "JOB_TIMEOUT_SECONDS=0" in raised.value.message and stage in raised.value.message


def test_a_job_within_its_deadline_is_untouched():
    with job_deadline(5) as progress:
        progress.stage = "llm"
    assert progress.stage == "llm"


def test_a_cancellation_by_prefect_is_not_turned_into_a_deadline_failure():
    # e.g. the run's concurrency lease was lost when an automation marked it Crashed
    with pytest.raises(CancelledError), job_deadline(60):
        raise CancelledError()

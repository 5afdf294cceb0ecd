"""JOB_TIMEOUT_SECONDS: a run still working after it fails with the code of the stage it was in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefect.utilities.timeout import timeout

from video_processor.errors import AudioError, PipelineError, SpeechToTextTimeout, SummaryTimeout

STAGE_ERRORS: dict[str, type[PipelineError]] = {
    "audio": AudioError,
    "stt": SpeechToTextTimeout,
    "llm": SummaryTimeout,
}


class _DeadlinePassed(TimeoutError):
    """Raised into the flow by Prefect's timeout; turned into the stage's pipeline error."""


@dataclass
class Progress:
    """The stage a job is in: `audio`, `stt`, `llm`, then `result`."""

    stage: str = "audio"


def deadline_error(stage: str, seconds: float) -> PipelineError:
    """FFMPEG_FAILED, STT_TIMEOUT or LLM_TIMEOUT by stage; UNKNOWN_ERROR after them."""
    error_type = STAGE_ERRORS.get(stage, PipelineError)
    return error_type(f"the job took longer than JOB_TIMEOUT_SECONDS={seconds:.0f} (in {stage})")


@contextmanager
def job_deadline(seconds: float) -> Iterator[Progress]:
    """Stop the job body after `seconds`; the caller records its stage in the Progress."""
    progress = Progress()
    started = time.monotonic()
    try:
        with timeout(seconds, timeout_exc_type=_DeadlinePassed):
            yield progress
    except _DeadlinePassed as exc:
        cancelled = exc.__context__
        if time.monotonic() - started < seconds and cancelled is not None:
            # Prefect cancelled the run for its own reason (e.g. its concurrency lease was
            # lost when the run was marked Crashed): not a deadline, so not a FAILED job.
            raise cancelled from None
        raise deadline_error(progress.stage, seconds) from exc

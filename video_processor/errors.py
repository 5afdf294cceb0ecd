"""The pipeline's one error tree.

Every failure that reaches the backend carries one of the stable error codes of the
callback contract. Third-party errors are translated into this tree where they are
raised (one mapping per client module) and chained with ``from exc``.

    PipelineError (code, retryable)
    ├── ConfigurationError          UNKNOWN_ERROR  (never retried)
    ├── DownloadError               S3_DOWNLOAD_FAILED
    ├── StorageError                UNKNOWN_ERROR  (writing results or work files)
    ├── AudioError                  FFMPEG_FAILED
    ├── SpeechToTextError           STT_BAD_RESPONSE
    │   ├── SpeechToTextTimeout     STT_TIMEOUT
    │   └── TranscriptRejected      STT_BAD_RESPONSE  (quality gate: silence, loops)
    │       └── SpeechTooNoisy      STT_BAD_RESPONSE  (audible sound, broadband noise)
    ├── SummaryError                LLM_BAD_RESPONSE
    │   ├── SummaryTimeout          LLM_TIMEOUT
    │   └── SummaryRefused          LLM_REFUSED  (the model declined: never retried)
    └── CallbackError               CALLBACK_FAILED

``retryable`` says whether trying the same call again can succeed (timeouts, 429, 5xx,
connection errors); task retry conditions read it and nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    S3_DOWNLOAD_FAILED = "S3_DOWNLOAD_FAILED"
    FFMPEG_FAILED = "FFMPEG_FAILED"
    STT_TIMEOUT = "STT_TIMEOUT"
    STT_BAD_RESPONSE = "STT_BAD_RESPONSE"
    LLM_TIMEOUT = "LLM_TIMEOUT"
    LLM_BAD_RESPONSE = "LLM_BAD_RESPONSE"
    LLM_REFUSED = "LLM_REFUSED"
    CALLBACK_FAILED = "CALLBACK_FAILED"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


class PipelineError(Exception):
    """Base of every error the pipeline reports; ``code`` goes on the FAILED callback."""

    code: ErrorCode = ErrorCode.UNKNOWN_ERROR

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments survive pickling (Prefect persists task exceptions).
        return (_rebuild_error, (type(self), self.message, self.retryable))


def _rebuild_error(cls: type[PipelineError], message: str, retryable: bool) -> PipelineError:
    return cls(message, retryable=retryable)


class ConfigurationError(PipelineError):
    code = ErrorCode.UNKNOWN_ERROR


class DownloadError(PipelineError):
    code = ErrorCode.S3_DOWNLOAD_FAILED


class StorageError(PipelineError):
    code = ErrorCode.UNKNOWN_ERROR


class AudioError(PipelineError):
    code = ErrorCode.FFMPEG_FAILED


class SpeechToTextError(PipelineError):
    code = ErrorCode.STT_BAD_RESPONSE


class SpeechToTextTimeout(SpeechToTextError):
    code = ErrorCode.STT_TIMEOUT


class TranscriptRejected(SpeechToTextError):
    """The transcript is empty or junk (hallucinations on silence, loops): nothing to summarise.

    The contract has no code of its own for it; the STT stage answered something unusable,
    so it is ``STT_BAD_RESPONSE``, never retried (the same audio gives the same transcript).
    """


class SpeechTooNoisy(TranscriptRejected):
    """Sound throughout, but under broadband noise the engine recognised no usable speech:
    told apart from silence so that a user knows a cleaner recording may work."""


class SummaryError(PipelineError):
    code = ErrorCode.LLM_BAD_RESPONSE


class SummaryTimeout(SummaryError):
    code = ErrorCode.LLM_TIMEOUT


class SummaryRefused(SummaryError):
    """Claude declined to summarise (``stop_reason: "refusal"``): the content, not the call,
    is the problem, so asking again gives the same answer. Its own code lets the backend tell
    a policy refusal from a broken reply."""

    code = ErrorCode.LLM_REFUSED


class CallbackError(PipelineError):
    code = ErrorCode.CALLBACK_FAILED


def error_code_of(exc: BaseException | None) -> ErrorCode:
    """The callback error code for any exception (``UNKNOWN_ERROR`` when it is not ours)."""
    if isinstance(exc, PipelineError):
        return exc.code
    return ErrorCode.UNKNOWN_ERROR


def is_retryable(exc: BaseException | None) -> bool:
    return isinstance(exc, PipelineError) and exc.retryable

"""The error tree: each error's callback code, whether it may be retried, and pickling."""

import pickle

import pytest

from video_processor import errors
from video_processor.errors import ErrorCode, PipelineError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.PipelineError, "UNKNOWN_ERROR"),
        (errors.ConfigurationError, "UNKNOWN_ERROR"),
        (errors.DownloadError, "S3_DOWNLOAD_FAILED"),
        (errors.StorageError, "UNKNOWN_ERROR"),
        (errors.AudioError, "FFMPEG_FAILED"),
        (errors.SpeechToTextError, "STT_BAD_RESPONSE"),
        (errors.SpeechToTextTimeout, "STT_TIMEOUT"),
        (errors.TranscriptRejected, "STT_BAD_RESPONSE"),
        (errors.SpeechTooNoisy, "STT_BAD_RESPONSE"),
        (errors.SummaryError, "LLM_BAD_RESPONSE"),
        (errors.SummaryTimeout, "LLM_TIMEOUT"),
        (errors.SummaryRefused, "LLM_REFUSED"),
        (errors.CallbackError, "CALLBACK_FAILED"),
    ],
)
def test_each_error_carries_its_contract_code(error: type[PipelineError], code: str):
    exc = error("why")
    assert errors.error_code_of(exc) == code == exc.code.value
    assert str(exc) == f"{code}: why"
    assert exc.message == "why" and exc.retryable is False


def test_the_codes_are_those_of_the_contract():
    assert [code.value for code in ErrorCode] == [
        "S3_DOWNLOAD_FAILED",
        "FFMPEG_FAILED",
        "STT_TIMEOUT",
        "STT_BAD_RESPONSE",
        "LLM_TIMEOUT",
        "LLM_BAD_RESPONSE",
        "LLM_REFUSED",
        "CALLBACK_FAILED",
        "UNKNOWN_ERROR",
    ]


def test_foreign_exceptions_are_unknown_and_not_retried():
    assert errors.error_code_of(ValueError("x")) is ErrorCode.UNKNOWN_ERROR
    assert errors.error_code_of(None) is ErrorCode.UNKNOWN_ERROR
    assert errors.is_retryable(ValueError("x")) is False
    assert errors.is_retryable(None) is False
    assert errors.is_retryable(errors.SummaryTimeout("slow", retryable=True)) is True
    assert errors.is_retryable(errors.SummaryTimeout("slow")) is False


def test_errors_survive_pickling_with_their_retry_flag():
    exc = errors.SpeechToTextTimeout("slow", retryable=True)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is errors.SpeechToTextTimeout
    assert (copy.message, copy.retryable, str(copy)) == ("slow", True, "STT_TIMEOUT: slow")

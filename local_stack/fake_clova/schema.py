"""What CLOVA CSR takes and answers (/work/shared/contracts.md §3): limits, error codes, bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, JsonValue

from local_stack.http_fake import Response, json_response

STT_PATH = "/recog/v1/stt"
Language = Literal["Kor", "Eng", "Jpn", "Chn"]
LANGUAGES = frozenset({"Kor", "Eng", "Jpn", "Chn"})
KEY_ID_HEADER = "X-NCP-APIGW-API-KEY-ID"
KEY_HEADER = "X-NCP-APIGW-API-KEY"
AUDIO_MEDIA_TYPE = "application/octet-stream"
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_AUDIO_SECONDS = 60
MIN_SAMPLE_RATE_HZ = 16_000
# ffprobe format names of the containers CSR takes (mp3, aac, ac3, ogg, flac, wav).
ACCEPTED_FORMATS = frozenset({"mp3", "aac", "ac3", "ogg", "flac", "wav"})

# (errorCode, message) of the API gateway's and the STT engine's errors.
BAD_REQUEST = ("100", "Bad Request")
AUTHENTICATION_FAILED = ("200", "Authentication Failed")
NOT_FOUND = ("300", "Not Found")
QUOTA_EXCEEDED = ("400", "Quota Exceeded")
THROTTLE_LIMITED = ("410", "Throttle Limited")
GATEWAY_TOO_LARGE = ("430", "Request Entity Too Large")
ENDPOINT_ERROR = ("500", "Endpoint Error")
ENDPOINT_TIMEOUT = ("510", "Endpoint Timeout")
UNEXPECTED_ERROR = ("900", "Unexpected Error")
TOO_LARGE = ("STT000", "Request Entity Too Large")
TOO_LONG = ("STT001", "Exceed Sound Data length")
INVALID_CONTENT_TYPE = ("STT002", "Invalid Content Type")
EMPTY_SOUND = ("STT003", "Empty Sound Data")
EMPTY_LANGUAGE = ("STT004", "Empty Language")
INVALID_LANGUAGE = ("STT005", "Invalid Language")
PREPROCESSING_FAILED = ("STT006", "Failed to pre-processing")
INTERNAL_ERROR = ("STT999", "Internal Server Error")

# The error each status fault answers with unless the fault overrides the body.
FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: BAD_REQUEST,
    401: AUTHENTICATION_FAILED,
    404: NOT_FOUND,
    413: GATEWAY_TOO_LARGE,
    429: THROTTLE_LIMITED,
    500: INTERNAL_ERROR,
    503: ENDPOINT_ERROR,
    504: ENDPOINT_TIMEOUT,
}


class SttReply(BaseModel):
    """``200``: ``text`` is the only field."""

    text: str


class GatewayError(BaseModel):
    """``{"error": {"errorCode": "...", "message": "..."}}`` (errorCode is a string)."""

    error: dict[str, str]


def clova_error(status: int, error: tuple[str, str]) -> Response:
    """The gateway error envelope (STT0xx errors are assumed to use it too)."""
    code, message = error
    payload: JsonValue = {"error": {"errorCode": code, "message": message}}
    return json_response(status, payload)

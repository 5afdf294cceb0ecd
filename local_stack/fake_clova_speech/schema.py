"""What CLOVA Speech takes and answers (/work/shared/contracts.md §4): params, limits, errors.

The body of an error reply is unconfirmed for the real service; the fake answers a flat
``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, model_validator

from local_stack.http_fake import Response, json_response

API_KEY_HEADER = "X-CLOVASPEECH-API-KEY"
RECOGNIZER = "/recognizer"
MAX_SYNC_AUDIO_SECONDS = 2 * 3600
MAX_ASYNC_AUDIO_SECONDS = 6 * 3600
MAX_MEDIA_BYTES = 2 * 1024**3
# ffprobe format names of NCP's listed containers (m4a/mp4/mov share one, wmv is asf).
ACCEPTED_FORMATS = frozenset(
    {
        "mp3",
        "aac",
        "ac3",
        "ogg",
        "flac",
        "wav",
        "mov",
        "mp4",
        "m4a",
        "avi",
        "asf",
        "flv",
        "matroska",
    }
)
# EBML DocType element (0x4282, size 4) of a WebM file, within its first bytes.
WEBM_DOCTYPE = b"\x42\x82\x84webm"
EBML_HEADER_BYTES = 64

INVALID_PARAMETERS = ("400", "Invalid request parameters")
INVALID_SECRET = ("401", "Invalid secret")
NOT_FOUND = ("404", "Not Found")
TOO_LARGE = ("STT000", "Request Entity Too Large")
TOO_LONG = ("STT001", "Exceed Sound Data length")
PREPROCESSING_FAILED = ("STT006", "Failed to pre-processing")
FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: INVALID_PARAMETERS,
    401: INVALID_SECRET,
    404: NOT_FOUND,
    413: TOO_LARGE,
    500: ("STT999", "Internal Server Error"),
}

Language = Literal["ko-KR", "en-US", "enko", "ja", "zh-cn", "zh-tw"]


class Diarization(BaseModel):
    model_config = ConfigDict(extra="allow")

    enable: StrictBool = False


class Boosting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: str


class RecognitionParams(BaseModel):
    """The documented params; unknown keys are ignored, wrong types refused."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    language: Language = "ko-KR"
    completion: Literal["sync", "async"] = "async"
    callback: Annotated[str, Field(pattern=r"^https?://")] | None = None
    result_to_obs: StrictBool = Field(default=False, alias="resultToObs")
    userdata: JsonValue | None = None
    word_alignment: StrictBool = Field(default=True, alias="wordAlignment")
    full_text: StrictBool = Field(default=True, alias="fullText")
    noise_filtering: StrictBool = Field(default=True, alias="noiseFiltering")
    diarization: Diarization | None = None
    boostings: list[Boosting] | None = None

    @model_validator(mode="after")
    def _async_has_a_result_target(self) -> Self:
        if self.completion == "async" and self.callback is None and not self.result_to_obs:
            raise ValueError("completion async needs callback or resultToObs")
        return self


class UrlRequest(RecognitionParams):
    """The body of ``POST {invoke}/recognizer/url``."""

    url: Annotated[str, Field(pattern=r"^https?://")]


class ObjectStorageRequest(RecognitionParams):
    """The body of ``POST {invoke}/recognizer/object-storage``."""

    data_key: Annotated[str, Field(min_length=1)] = Field(alias="dataKey")


class SpeechError(BaseModel):
    code: str
    message: str


def speech_error(status: int, error: tuple[str, str]) -> Response:
    """The fake's error body (the real one's shape is unconfirmed)."""
    code, message = error
    return json_response(status, {"code": code, "message": message})


def status_error(status: int) -> tuple[str, str]:
    """The error a status fault answers with, for a status the documentation names or not."""
    if status in FAULT_ERRORS:
        return FAULT_ERRORS[status]
    try:
        return str(status), HTTPStatus(status).phrase
    except ValueError:
        return str(status), "Unexpected Error"


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    filename: str | None
    content_type: str | None
    content: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """The parts of a multipart/form-data body by name (the standard library's MIME parser);
    a body the parser finds defects in (no boundary, not terminated, ...) is refused."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if message.get_content_type() != "multipart/form-data" or not message.is_multipart():
        raise ValueError("not a multipart/form-data body")
    if message.defects:
        raise ValueError(f"malformed multipart body: {message.defects}")
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.defects or not isinstance(name, str):
            raise ValueError("multipart part without a name")
        payload = part.get_payload(decode=True)
        parts[name] = Part(
            part.get_filename(),
            part.get_content_type() if part.get("Content-Type") else None,
            payload if isinstance(payload, bytes) else b"",
        )
    return parts

"""Fake Naver CLOVA Speech (long-form recognition), as documented.

Serves, under an invoke path like the real ``/external/v1/{id}/{key}``:

- ``POST {invoke}/recognizer/upload``: multipart ``media`` (file) + ``params`` (JSON string);
- ``POST {invoke}/recognizer/url``: JSON params with ``url`` (fetched by the fake, e.g. a
  presigned URL of the local moto server);
- ``POST {invoke}/recognizer/object-storage``: JSON params with ``dataKey`` (fetched from
  ``object_storage_url``/``dataKey`` when that is configured, refused otherwise);
- ``GET {invoke}/recognizer/{token}``: the state of an async job.

Checks, in order: the invoke path (404), ``X-CLOVASPEECH-API-KEY`` (401 "Invalid secret"),
the request's form and params (400 "Invalid request parameters": among them an upload whose
``params`` part is not ``application/json``, and ``completion: async`` naming neither
``callback`` nor ``resultToObs: true``, which NCP's request tables require), the media size
(413 STT000, 2 GB), decodability with the real ``ffprobe`` and NCP's list of containers
(500 STT006: MP3, AAC, AC3, OGG, FLAC, WAV, M4A, AVI, MP4, MOV, WMV, FLV, MKV; WebM, which
shares MKV's demuxer, is told apart by its EBML DocType), the length (413 STT001; 2 h sync,
6 h async). The result's segments are derived from the media's
real duration (one per ``segment_seconds``, times in milliseconds), with word alignment,
full text and, with diarization on, alternating speakers.

``completion: sync`` answers the result after the latency
``base_latency_s + per_audio_second_s × audio seconds`` (CLOVA Speech's is about
1 s + 0.05 s per audio second: ``REALISTIC_LATENCY``; defaults are 0 for tests).
``async`` (the default) answers a token at once; polling reports ``WAITING`` for
``waiting_s``, then ``PROCESSING`` until the latency has passed, then the result.
Extra fault kinds ``job-failed`` / ``job-timeout`` make the next job end ``FAILED`` /
``TIMEOUT``. The ``callback`` param is validated but never called, and a ``resultToObs``
result is served by polling only (nothing is written to an Object Storage).

The body of an error reply is unconfirmed for the real service; the fake answers a flat
``{"code": ..., "message": ...}``. Request bodies go through the shared framing limit
(``http_fake.MAX_READ_BYTES``, 64 MB), so the 2 GB limit is only reachable through ``url``
or a lowered ``max_media_bytes``.

Run it alone with ``python -m local_stack.fake_clova_speech --port 8093``.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    ValidationError,
    model_validator,
)

from local_stack.fake_clova import probe_audio_file
from local_stack.http_fake import (
    DEFAULT_HOST,
    FakeHTTPServer,
    FakeService,
    Fault,
    Request,
    Response,
    cli_parser,
    json_response,
    serve_until_signalled,
    start_server,
)

API_KEY_HEADER = "X-CLOVASPEECH-API-KEY"
DEFAULT_INVOKE_PATH = "/external/v1/1000/fake-invoke-key"
DEFAULT_SECRET_KEY = "test-clova-speech-secret"
DEFAULT_TEXT = "안녕하세요 긴 영상의 테스트 음성입니다"
RECOGNIZER = "/recognizer"
MAX_SYNC_AUDIO_SECONDS = 2 * 3600
MAX_ASYNC_AUDIO_SECONDS = 6 * 3600
MAX_MEDIA_BYTES = 2 * 1024**3
REALISTIC_LATENCY = {"base_latency_s": 1.0, "per_audio_second_s": 0.05}
MS_PER_S = 1000
FETCH_CHUNK_BYTES = 1024 * 1024
SEGMENT_CONFIDENCE = 0.95
SPEAKERS = (("1", "A"), ("2", "B"))
JOB_FAILED_FAULT = "job-failed"
JOB_TIMEOUT_FAULT = "job-timeout"
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

ParamsT = TypeVar("ParamsT", bound="RecognitionParams")
Language = Literal["ko-KR", "en-US", "enko", "ja", "zh-cn", "zh-tw"]


class ClovaSpeechConfig(BaseModel):
    """Runtime settings of the fake (``/__admin/config``)."""

    model_config = ConfigDict(extra="forbid")

    secret_key: str = DEFAULT_SECRET_KEY
    invoke_path: str = Field(default=DEFAULT_INVOKE_PATH, pattern=r"^/[^?#]*[^/]$")
    text: str = DEFAULT_TEXT
    segment_seconds: float = Field(default=5.0, gt=0)
    base_latency_s: float = Field(default=0.0, ge=0)
    per_audio_second_s: float = Field(default=0.0, ge=0)
    waiting_s: float = Field(default=0.0, ge=0)
    max_sync_audio_s: float = Field(default=MAX_SYNC_AUDIO_SECONDS, gt=0)
    max_async_audio_s: float = Field(default=MAX_ASYNC_AUDIO_SECONDS, gt=0)
    max_media_bytes: int = Field(default=MAX_MEDIA_BYTES, gt=0)
    object_storage_url: str | None = None
    fetch_timeout_s: float = Field(default=60.0, gt=0)


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
    url: Annotated[str, Field(pattern=r"^https?://")]


class ObjectStorageRequest(RecognitionParams):
    data_key: Annotated[str, Field(min_length=1)] = Field(alias="dataKey")


@dataclass
class Job:
    """An async recognition: its state follows the clock; the final body is ready."""

    token: str
    processing_at: float
    done_at: float
    final: dict[str, JsonValue]

    def state(self, now: float) -> dict[str, JsonValue]:
        if now < self.processing_at:
            return {"result": "WAITING", "message": "Waiting", "token": self.token}
        if now < self.done_at:
            span = max(self.done_at - self.processing_at, 1e-9)
            progress = int(100 * (now - self.processing_at) / span)
            return {
                "result": "PROCESSING",
                "message": "Processing",
                "token": self.token,
                "progress": progress,
            }
        return self.final


class _Refused(Exception):
    """A request refused with one of the service's error replies."""

    def __init__(self, status: int, error: tuple[str, str], detail: str = "") -> None:
        super().__init__(detail or error[1])
        self.response = speech_error(status, *error)


def speech_error(status: int, code: str, message: str) -> Response:
    """The fake's error body (the real one's shape is unconfirmed)."""
    return json_response(status, {"code": code, "message": message})


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    filename: str | None
    content_type: str | None
    content: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """The parts of a multipart/form-data body by name."""
    header = HeaderParser().parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    delimiter = b"\r\n--" + boundary.encode()
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise ValueError("multipart body is not terminated")
    parts: dict[str, Part] = {}
    for piece in pieces[1:-1]:
        head, separator, content = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without headers")
        headers = HeaderParser().parsestr(head.decode("utf-8", "replace") + "\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("multipart part without a name")
        filename = headers.get_param("filename", header="content-disposition")
        parts[name] = Part(
            filename if isinstance(filename, str) else None,
            headers.get_content_type() if headers.get("Content-Type") else None,
            content,
        )
    return parts


def accepted_container(media: Path, formats: frozenset[str]) -> bool:
    """Whether ffprobe's format names and the file's header are a container NCP lists."""
    if not formats & ACCEPTED_FORMATS:
        return False
    if "matroska" in formats:
        with media.open("rb") as head:
            return WEBM_DOCTYPE not in head.read(EBML_HEADER_BYTES)
    return True


def build_result(
    token: str, params: RecognitionParams, duration_s: float, config: ClovaSpeechConfig
) -> dict[str, JsonValue]:
    """A COMPLETED result whose segments cover ``duration_s``, one per ``segment_seconds``."""
    total_ms = round(duration_s * MS_PER_S)
    step_ms = max(1, round(config.segment_seconds * MS_PER_S))
    diarize = params.diarization is not None and params.diarization.enable
    words = config.text.split()
    segments: list[JsonValue] = []
    for index in range(math.ceil(total_ms / step_ms)):
        start, end = index * step_ms, min((index + 1) * step_ms, total_ms)
        segment: dict[str, JsonValue] = {
            "start": start,
            "end": end,
            "text": config.text,
            "confidence": SEGMENT_CONFIDENCE,
            "textEdited": config.text,
        }
        if params.word_alignment and words:
            width = (end - start) / len(words)
            segment["words"] = [
                [round(start + i * width), round(start + (i + 1) * width), word]
                for i, word in enumerate(words)
            ]
        if diarize:
            label, name = SPEAKERS[index % len(SPEAKERS)]
            segment["speaker"] = {"label": label, "name": name, "edited": False}
            segment["diarization"] = {"label": label}
        segments.append(segment)
    result: dict[str, JsonValue] = {
        "result": "COMPLETED",
        "message": "Succeeded",
        "token": token,
        "version": "fake",
        "params": params.model_dump(mode="json", by_alias=True, exclude_none=True),
        "progress": 100,
        "segments": segments,
    }
    if params.full_text:
        result["text"] = " ".join(config.text for _ in segments)
    if diarize:
        result["speakers"] = [
            {"label": label, "name": name, "edited": False} for label, name in SPEAKERS
        ]
    return result


def failed_result(token: str, state: str, message: str) -> dict[str, JsonValue]:
    return {"result": state, "message": message, "token": token, "segments": []}


class FakeClovaSpeech(FakeService[ClovaSpeechConfig]):
    """CLOVA Speech long-form: refuses what the real service refuses; sync and async jobs."""

    name = "fake-clova-speech"
    extra_fault_kinds = frozenset({JOB_FAILED_FAULT, JOB_TIMEOUT_FAULT})

    def __init__(self, config: ClovaSpeechConfig | None = None) -> None:
        super().__init__(config or ClovaSpeechConfig())
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._counts: Counter[str] = Counter()
        self._audio_seconds = 0.0

    # -- routing ----------------------------------------------------------------------------

    def _recognizer_path(self, request: Request) -> str | None:
        prefix = self.config.invoke_path + RECOGNIZER + "/"
        return request.path.removeprefix(prefix) if request.path.startswith(prefix) else None

    def accepts_faults(self, request: Request) -> bool:
        return self._recognizer_path(request) is not None

    def route(self, request: Request, fault: Fault | None) -> Response:
        config = self.config
        endpoint = self._recognizer_path(request)
        if endpoint is None or not endpoint or "/" in endpoint:
            return speech_error(404, *NOT_FOUND)
        if request.header(API_KEY_HEADER) != config.secret_key:
            return speech_error(401, *INVALID_SECRET)
        try:
            if request.method == "GET":
                return self._poll(endpoint)
            if request.method != "POST":
                raise _Refused(404, NOT_FOUND)
            match endpoint:
                case "upload":
                    return self._upload(request, config, fault)
                case "url":
                    body = self._json_params(request, UrlRequest)
                    return self._from_url(body, body.url, config, fault, "url")
                case "object-storage":
                    storage = self._json_params(request, ObjectStorageRequest)
                    if not config.object_storage_url:
                        raise _Refused(400, INVALID_PARAMETERS, "no object storage configured")
                    url = f"{config.object_storage_url.rstrip('/')}/{storage.data_key}"
                    return self._from_url(storage, url, config, fault, "object-storage")
            raise _Refused(404, NOT_FOUND)
        except _Refused as refused:
            return refused.response

    def error_response(self, request: Request, status: int) -> Response:
        code, message = FAULT_ERRORS.get(status, (str(status), _phrase(status)))
        return speech_error(status, code, message)

    # -- requests ---------------------------------------------------------------------------

    def _json_params(self, request: Request, model: type[ParamsT]) -> ParamsT:
        if request.media_type() != "application/json":
            raise _Refused(400, INVALID_PARAMETERS)
        try:
            return model.model_validate_json(request.body)
        except ValidationError as exc:
            raise _Refused(400, INVALID_PARAMETERS) from exc

    def _upload(self, request: Request, config: ClovaSpeechConfig, fault: Fault | None) -> Response:
        if request.media_type() != "multipart/form-data":
            raise _Refused(400, INVALID_PARAMETERS)
        try:
            parts = parse_multipart(request.header("Content-Type") or "", request.body)
            if parts["params"].content_type != "application/json":
                raise ValueError("the params part is not application/json")
            params = RecognitionParams.model_validate_json(parts["params"].content)
            media = parts["media"].content
        except (ValueError, KeyError) as exc:  # ValidationError is a ValueError
            raise _Refused(400, INVALID_PARAMETERS) from exc
        if not media:
            raise _Refused(400, INVALID_PARAMETERS)
        if len(media) > config.max_media_bytes:
            raise _Refused(413, TOO_LARGE)
        with tempfile.TemporaryDirectory(prefix="fake-clova-speech-") as work:
            path = Path(work) / "media"
            path.write_bytes(media)
            return self._recognize(path, params, config, fault, "upload")

    def _from_url(
        self,
        params: RecognitionParams,
        url: str,
        config: ClovaSpeechConfig,
        fault: Fault | None,
        source: str,
    ) -> Response:
        with tempfile.TemporaryDirectory(prefix="fake-clova-speech-") as work:
            path = Path(work) / "media"
            _fetch(url, path, config)
            return self._recognize(path, params, config, fault, source)

    def _recognize(
        self,
        media: Path,
        params: RecognitionParams,
        config: ClovaSpeechConfig,
        fault: Fault | None,
        source: str,
    ) -> Response:
        probe = probe_audio_file(media)
        if probe is None or not accepted_container(media, probe.formats):
            raise _Refused(500, PREPROCESSING_FAILED)
        limit = config.max_sync_audio_s if params.completion == "sync" else config.max_async_audio_s
        if probe.duration_s > limit:
            raise _Refused(413, TOO_LONG)
        token = secrets.token_hex(16)
        final = build_result(token, params, probe.duration_s, config)
        if fault is not None and fault.kind == JOB_FAILED_FAULT:
            final = failed_result(token, "FAILED", "Failed to STT")
        elif fault is not None and fault.kind == JOB_TIMEOUT_FAULT:
            final = failed_result(token, "TIMEOUT", "Timeout")
        latency = config.base_latency_s + config.per_audio_second_s * probe.duration_s
        with self._lock:
            self._counts[f"{params.completion}:{source}"] += 1
            self._audio_seconds += probe.duration_s
        if params.completion == "sync":
            self.sleep(latency)
            return json_response(200, final)
        now = time.monotonic()
        processing_at = now + config.waiting_s
        job = Job(token, processing_at, processing_at + latency, final)
        with self._lock:
            self._jobs[token] = job
        return json_response(200, {"result": "STARTED", "message": "Started", "token": token})

    def _poll(self, token: str) -> Response:
        with self._lock:
            job = self._jobs.get(token)
        if job is None:
            raise _Refused(400, INVALID_PARAMETERS, f"unknown token {token}")
        return json_response(200, job.state(time.monotonic()))

    # -- admin hooks ------------------------------------------------------------------------

    def extra_stats(self) -> dict[str, JsonValue]:
        now = time.monotonic()
        with self._lock:
            return {
                "jobs": dict(self._counts),
                "jobs_running": sum(job.done_at > now for job in self._jobs.values()),
                "audio_seconds": round(self._audio_seconds, 3),
            }

    def reset_state(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._counts.clear()
            self._audio_seconds = 0.0


def _fetch(url: str, path: Path, config: ClovaSpeechConfig) -> None:
    """Stream ``url`` into ``path``; an unreachable URL is an invalid parameter."""
    size = 0
    try:
        with (
            httpx.stream("GET", url, timeout=config.fetch_timeout_s) as response,
            path.open("wb") as out,
        ):
            if response.status_code != httpx.codes.OK:
                raise _Refused(
                    400, INVALID_PARAMETERS, f"media URL answered {response.status_code}"
                )
            for block in response.iter_bytes(FETCH_CHUNK_BYTES):
                size += len(block)
                if size > config.max_media_bytes:
                    raise _Refused(413, TOO_LARGE)
                out.write(block)
    except httpx.HTTPError as exc:
        raise _Refused(400, INVALID_PARAMETERS, f"media URL unreachable: {exc}") from exc


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unexpected Error"


def start_fake_clova_speech(
    config: ClovaSpeechConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeClovaSpeech]:
    """Serve a fake CLOVA Speech from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeClovaSpeech(config), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake until SIGINT/SIGTERM."""
    parser = cli_parser("Fake Naver CLOVA Speech (long-form recognition).")
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--invoke-path", default=DEFAULT_INVOKE_PATH)
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the text of every segment")
    parser.add_argument("--base-latency-s", type=float, default=0.0)
    parser.add_argument("--per-audio-second-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = ClovaSpeechConfig(
        secret_key=args.secret_key,
        invoke_path=args.invoke_path,
        text=args.text,
        base_latency_s=args.base_latency_s,
        per_audio_second_s=args.per_audio_second_s,
    )
    serve_until_signalled(FakeClovaSpeech(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

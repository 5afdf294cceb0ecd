"""The fake CLOVA Speech's behaviour (long-form recognition): checks, jobs, results.

The endpoints are listed in the package's docstring (``local_stack.fake_clova_speech``).

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

An upload is read into memory before its size is checked, so the 2 GB limit is meant to be
reached through ``url`` or a lowered ``max_media_bytes``.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from local_stack.fake_clova import probe_audio_file
from local_stack.fake_clova_speech import service
from local_stack.fake_clova_speech.schema import (
    ACCEPTED_FORMATS,
    API_KEY_HEADER,
    EBML_HEADER_BYTES,
    INVALID_PARAMETERS,
    INVALID_SECRET,
    MAX_ASYNC_AUDIO_SECONDS,
    MAX_MEDIA_BYTES,
    MAX_SYNC_AUDIO_SECONDS,
    NOT_FOUND,
    PREPROCESSING_FAILED,
    RECOGNIZER,
    TOO_LARGE,
    TOO_LONG,
    WEBM_DOCTYPE,
    ObjectStorageRequest,
    RecognitionParams,
    UrlRequest,
    parse_multipart,
    speech_error,
    status_error,
)
from local_stack.http_fake import FakeService, Fault, Refused, Request, Response, json_response

DEFAULT_INVOKE_PATH = "/external/v1/1000/fake-invoke-key"
DEFAULT_SECRET_KEY = "test-clova-speech-secret"
DEFAULT_TEXT = "안녕하세요 긴 영상의 테스트 음성입니다"
REALISTIC_LATENCY = {"base_latency_s": 1.0, "per_audio_second_s": 0.05}
MS_PER_S = 1000
FETCH_CHUNK_BYTES = 1024 * 1024
SEGMENT_CONFIDENCE = 0.95
SPEAKERS = (("1", "A"), ("2", "B"))
JOB_FAILED_FAULT = "job-failed"
JOB_TIMEOUT_FAULT = "job-timeout"


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
    """Fake Naver CLOVA Speech (long-form recognition): sync and async jobs, as documented."""

    name = "fake-clova-speech"
    extra_fault_kinds = frozenset({JOB_FAILED_FAULT, JOB_TIMEOUT_FAULT})

    def __init__(self, config: ClovaSpeechConfig | None = None) -> None:
        super().__init__(config or ClovaSpeechConfig())
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._counts: Counter[str] = Counter()
        self._audio_seconds = 0.0

    def create_app(self) -> FastAPI:
        return service.create_app(self)

    def accepts_faults(self, method: str, path: str) -> bool:
        return path.startswith(self.config.invoke_path + RECOGNIZER + "/")

    # -- checks -----------------------------------------------------------------------------

    def gate(self, request: Request) -> None:
        """Refuse a path outside the invoke path (404) or a wrong secret key (401)."""
        config = self.config
        if not self.accepts_faults(request.method, request.path):
            raise Refused(speech_error(404, NOT_FOUND))
        if request.header(API_KEY_HEADER) != config.secret_key:
            raise Refused(speech_error(401, INVALID_SECRET))

    def json_gate(self, request: Request) -> None:
        """``gate``, then refuse a body that is not declared JSON."""
        self.gate(request)
        if request.media_type() != "application/json":
            raise Refused(speech_error(400, INVALID_PARAMETERS))

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        try:
            self.gate(request)
        except Refused as refused:
            return refused.response
        return speech_error(400, INVALID_PARAMETERS)

    def not_found(self, request: Request) -> Response:
        return speech_error(404, NOT_FOUND)

    def error_response(self, request: Request, status: int) -> Response:
        return speech_error(status, status_error(status))

    # -- requests ---------------------------------------------------------------------------

    def upload(self, request: Request, fault: Fault | None) -> Response:
        """``recognizer/upload``: a multipart ``media`` file and ``params`` JSON part."""
        config = self.config
        if request.media_type() != "multipart/form-data":
            raise Refused(speech_error(400, INVALID_PARAMETERS))
        try:
            parts = parse_multipart(request.header("Content-Type") or "", request.body)
            if parts["params"].content_type != "application/json":
                raise ValueError("the params part is not application/json")
            params = RecognitionParams.model_validate_json(parts["params"].content)
            media = parts["media"].content
        except (ValueError, KeyError, ValidationError) as exc:
            raise Refused(speech_error(400, INVALID_PARAMETERS), str(exc)) from exc
        if not media:
            raise Refused(speech_error(400, INVALID_PARAMETERS))
        if len(media) > config.max_media_bytes:
            raise Refused(speech_error(413, TOO_LARGE))
        with tempfile.TemporaryDirectory(prefix="fake-clova-speech-") as work:
            path = Path(work) / "media"
            path.write_bytes(media)
            return self._recognize(path, params, config, fault, "upload")

    def from_url(self, body: UrlRequest, fault: Fault | None) -> Response:
        """``recognizer/url``: the media is fetched from ``url``."""
        return self._fetched(body, body.url, fault, "url")

    def from_object_storage(self, body: ObjectStorageRequest, fault: Fault | None) -> Response:
        """``recognizer/object-storage``: the media is fetched from the configured storage."""
        storage_url = self.config.object_storage_url
        if not storage_url:
            raise Refused(speech_error(400, INVALID_PARAMETERS), "no object storage configured")
        url = f"{storage_url.rstrip('/')}/{body.data_key}"
        return self._fetched(body, url, fault, "object-storage")

    def poll(self, token: str) -> Response:
        """``GET recognizer/{token}``: the state of an async job."""
        with self._lock:
            job = self._jobs.get(token)
        if job is None:
            raise Refused(speech_error(400, INVALID_PARAMETERS), f"unknown token {token}")
        return json_response(200, job.state(time.monotonic()))

    def _fetched(
        self, params: RecognitionParams, url: str, fault: Fault | None, source: str
    ) -> Response:
        config = self.config
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
            raise Refused(speech_error(500, PREPROCESSING_FAILED))
        limit = config.max_sync_audio_s if params.completion == "sync" else config.max_async_audio_s
        if probe.duration_s > limit:
            raise Refused(speech_error(413, TOO_LONG))
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
                raise Refused(
                    speech_error(400, INVALID_PARAMETERS),
                    f"media URL answered {response.status_code}",
                )
            for block in response.iter_bytes(FETCH_CHUNK_BYTES):
                size += len(block)
                if size > config.max_media_bytes:
                    raise Refused(speech_error(413, TOO_LARGE))
                out.write(block)
    except httpx.HTTPError as exc:
        raise Refused(
            speech_error(400, INVALID_PARAMETERS), f"media URL unreachable: {exc}"
        ) from exc

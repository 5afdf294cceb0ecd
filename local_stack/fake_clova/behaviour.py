"""The fake CLOVA CSR's behaviour: its checks in the real service's order, latency, answers.

Implements the documented API: API-gateway key check, the application's API selection
(``csr_enabled: false`` answers 429 ``"400" Quota Exceeded``, as NCP does for an application
that has not selected CSR), the STT0xx refusals in the real service's order, audio
decoding with the real ``ffprobe`` (format, 60 s and 16 kHz limits), and a
``{"text": ...}`` reply after a configurable latency. Every error uses the gateway
envelope ``{"error": {"errorCode": "...", "message": "..."}}``.

Every audio is "heard" as the one configured text ("" when it is silent). ``{call}`` in the
text becomes the number of the recognised call (1, 2, ...), so that the chunks of a long
video read differently, as real speech does (one text repeated across many chunks is
what the pipeline's quality gate rejects as an STT loop).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from local_stack.fake_clova import service
from local_stack.fake_clova.schema import (
    ACCEPTED_FORMATS,
    AUDIO_MEDIA_TYPE,
    AUTHENTICATION_FAILED,
    BAD_REQUEST,
    EMPTY_LANGUAGE,
    EMPTY_SOUND,
    FAULT_ERRORS,
    INVALID_CONTENT_TYPE,
    INVALID_LANGUAGE,
    KEY_HEADER,
    KEY_ID_HEADER,
    LANGUAGES,
    MAX_AUDIO_SECONDS,
    MAX_BODY_BYTES,
    MIN_SAMPLE_RATE_HZ,
    NOT_FOUND,
    PREPROCESSING_FAILED,
    QUOTA_EXCEEDED,
    STT_PATH,
    TOO_LARGE,
    TOO_LONG,
    UNEXPECTED_ERROR,
    clova_error,
)
from local_stack.http_fake import FakeService, Fault, Request, Response, json_response

FFPROBE_TIMEOUT_S = 30
SILENCE_MAX_VOLUME_DB = -50.0
MAX_VOLUME_PATTERN = re.compile(r"max_volume: (?P<db>-?[\d.]+|-inf) dB")

DEFAULT_API_KEY_ID = "test-clova-key-id"
DEFAULT_API_KEY = "test-clova-key"
DEFAULT_TEXT = "안녕하세요 테스트 음성입니다"
CALL_PLACEHOLDER = "{call}"


class ClovaConfig(BaseModel):
    """Runtime settings of the fake; latency = base + per audio second × duration."""

    model_config = ConfigDict(extra="forbid")

    api_key_id: str = DEFAULT_API_KEY_ID
    api_key: str = DEFAULT_API_KEY
    text: str = DEFAULT_TEXT  # "{call}" in it becomes the recognised call's number
    csr_enabled: bool = True  # whether the application has selected the CSR API
    base_latency_s: float = Field(default=0.0, ge=0)
    per_audio_second_s: float = Field(default=0.0, ge=0)


@dataclass(frozen=True)
class AudioProbe:
    """What ffprobe tells of an audio body."""

    formats: frozenset[str]
    duration_s: float
    sample_rate_hz: int


def probe_audio(body: bytes) -> AudioProbe | None:
    """Decode the body's first audio stream with ffprobe; None when it cannot."""
    with tempfile.NamedTemporaryFile(prefix="fake-clova-", suffix=".audio") as audio_file:
        audio_file.write(body)
        audio_file.flush()
        return probe_audio_file(Path(audio_file.name))


def is_silent(body: bytes) -> bool:
    """Whether the audio never rises above SILENCE_MAX_VOLUME_DB (real CSR answers "")."""
    with tempfile.NamedTemporaryFile(prefix="fake-clova-", suffix=".audio") as audio_file:
        audio_file.write(body)
        audio_file.flush()
        completed = subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-nostdin",
                "-i",
                audio_file.name,
                "-af",
                "volumedetect",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=FFPROBE_TIMEOUT_S,
            check=False,
        )
    match = MAX_VOLUME_PATTERN.search(completed.stderr)
    return match is not None and float(match["db"]) < SILENCE_MAX_VOLUME_DB


def probe_audio_file(path: Path) -> AudioProbe | None:
    """Decode the first audio stream of a media file with ffprobe; None when it cannot."""
    try:
        completed = subprocess.run(
            [
                "ffprobe",
                *("-v", "error", "-print_format", "json"),
                *("-show_format", "-show_streams", "-select_streams", "a:0"),
                str(path),
            ],
            capture_output=True,
            timeout=FFPROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if completed.returncode != 0:
        return None
    try:
        report = json.loads(completed.stdout)
        stream = report["streams"][0]
        return AudioProbe(
            formats=frozenset(report["format"]["format_name"].split(",")),
            duration_s=float(report["format"].get("duration") or stream["duration"]),
            sample_rate_hz=int(stream["sample_rate"]),
        )
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class FakeClova(FakeService[ClovaConfig]):
    """Fake Naver CLOVA Speech Recognition (CSR): refuses what the real service refuses."""

    name = "fake-clova"

    def __init__(self, config: ClovaConfig | None = None) -> None:
        super().__init__(config or ClovaConfig())
        self._lock = threading.Lock()
        self._audio_seconds = 0.0
        self._recognized = 0
        self._served_s: list[float] = []  # per recognised call, arrival to answer

    def create_app(self) -> FastAPI:
        return service.create_app(self)

    def accepts_faults(self, method: str, path: str) -> bool:
        return method == "POST" and path == STT_PATH

    def route(self, request: Request, fault: Fault | None) -> Response:
        """Answer one call to the STT endpoint."""
        config = self.config
        refusal = self.refusal(request, config)
        if refusal is not None:
            return refusal
        began = time.monotonic()
        probe = probe_audio(request.body)
        if probe is None or not probe.formats & ACCEPTED_FORMATS:
            return clova_error(500, PREPROCESSING_FAILED)
        if probe.duration_s > MAX_AUDIO_SECONDS:
            return clova_error(413, TOO_LONG)
        if probe.sample_rate_hz < MIN_SAMPLE_RATE_HZ:
            return clova_error(500, PREPROCESSING_FAILED)
        self.sleep(config.base_latency_s + config.per_audio_second_s * probe.duration_s)
        with self._lock:
            self._audio_seconds += probe.duration_s
            self._recognized += 1
            self._served_s.append(round(time.monotonic() - began, 3))
            call = self._recognized
        text = "" if is_silent(request.body) else config.text.replace(CALL_PLACEHOLDER, str(call))
        return json_response(200, {"text": text})

    def refusal(self, request: Request, config: ClovaConfig) -> Response | None:
        """The first gateway or STT0xx refusal that applies before decoding, if any."""
        if (
            request.header(KEY_ID_HEADER) != config.api_key_id
            or request.header(KEY_HEADER) != config.api_key
        ):
            return clova_error(401, AUTHENTICATION_FAILED)
        if not config.csr_enabled:
            return clova_error(429, QUOTA_EXCEEDED)
        lang = request.query_value("lang")
        if not lang:
            return clova_error(400, EMPTY_LANGUAGE)
        if lang not in LANGUAGES:
            return clova_error(400, INVALID_LANGUAGE)
        if request.media_type() != AUDIO_MEDIA_TYPE:
            return clova_error(400, INVALID_CONTENT_TYPE)
        if not request.body:
            return clova_error(400, EMPTY_SOUND)
        if len(request.body) > MAX_BODY_BYTES:
            return clova_error(413, TOO_LARGE)
        return None

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        # The route's schema only checks ``lang``; the gateway checks come first.
        return self.refusal(request, self.config) or clova_error(400, BAD_REQUEST)

    def not_found(self, request: Request) -> Response:
        return clova_error(404, NOT_FOUND)

    def error_response(self, request: Request, status: int) -> Response:
        return clova_error(status, FAULT_ERRORS.get(status, UNEXPECTED_ERROR))

    def extra_stats(self) -> dict[str, JsonValue]:
        with self._lock:
            return {
                "recognized": self._recognized,
                "audio_seconds": round(self._audio_seconds, 3),
                "served_s": list(self._served_s),
            }

    def reset_state(self) -> None:
        with self._lock:
            self._audio_seconds = 0.0
            self._recognized = 0
            self._served_s = []

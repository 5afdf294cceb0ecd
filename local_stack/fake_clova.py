"""Fake Naver CLOVA Speech Recognition (CSR, short audio): ``POST /recog/v1/stt?lang=Kor``.

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

Run it alone with ``python -m local_stack.fake_clova --port 8091``.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue

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

STT_PATH = "/recog/v1/stt"
LANGUAGES = frozenset({"Kor", "Eng", "Jpn", "Chn"})
AUDIO_MEDIA_TYPE = "application/octet-stream"
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_AUDIO_SECONDS = 60
MIN_SAMPLE_RATE_HZ = 16_000
# ffprobe format names of the containers CSR takes (mp3, aac, ac3, ogg, flac, wav).
ACCEPTED_FORMATS = frozenset({"mp3", "aac", "ac3", "ogg", "flac", "wav"})
FFPROBE_TIMEOUT_S = 30
SILENCE_MAX_VOLUME_DB = -50.0
MAX_VOLUME_PATTERN = re.compile(r"max_volume: (?P<db>-?[\d.]+|-inf) dB")

DEFAULT_API_KEY_ID = "test-clova-key-id"
DEFAULT_API_KEY = "test-clova-key"
DEFAULT_TEXT = "안녕하세요 테스트 음성입니다"
CALL_PLACEHOLDER = "{call}"

# The error each status fault answers with unless the fault overrides the body.
FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("100", "Bad Request"),
    401: ("200", "Authentication Failed"),
    404: ("300", "Not Found"),
    413: ("430", "Request Entity Too Large"),
    429: ("410", "Throttle Limited"),
    500: ("STT999", "Internal Server Error"),
    503: ("500", "Endpoint Error"),
    504: ("510", "Endpoint Timeout"),
}
UNEXPECTED_ERROR = ("900", "Unexpected Error")
QUOTA_EXCEEDED = ("400", "Quota Exceeded")


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


def _is_stt_call(request: Request) -> bool:
    return request.method == "POST" and request.path == STT_PATH


def clova_error(status: int, code: str, message: str) -> Response:
    """The gateway error envelope (errorCode is a string)."""
    return json_response(status, {"error": {"errorCode": code, "message": message}})


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
    """CLOVA CSR: refuses what the real service refuses, transcribes everything to one text."""

    name = "fake-clova"

    def __init__(self, config: ClovaConfig | None = None) -> None:
        super().__init__(config or ClovaConfig())
        self._lock = threading.Lock()
        self._audio_seconds = 0.0
        self._recognized = 0
        self._served_s: list[float] = []  # per recognised call, arrival to answer

    def accepts_faults(self, request: Request) -> bool:
        return _is_stt_call(request)

    def route(self, request: Request, fault: Fault | None) -> Response:
        if not _is_stt_call(request):
            return clova_error(404, "300", "Not Found")
        config = self.config
        refusal = self._refusal(request, config)
        if refusal is not None:
            return refusal
        began = time.monotonic()
        probe = probe_audio(request.body)
        if probe is None or not probe.formats & ACCEPTED_FORMATS:
            return clova_error(500, "STT006", "Failed to pre-processing")
        if probe.duration_s > MAX_AUDIO_SECONDS:
            return clova_error(413, "STT001", "Exceed Sound Data length")
        if probe.sample_rate_hz < MIN_SAMPLE_RATE_HZ:
            return clova_error(500, "STT006", "Failed to pre-processing")
        self.sleep(config.base_latency_s + config.per_audio_second_s * probe.duration_s)
        with self._lock:
            self._audio_seconds += probe.duration_s
            self._recognized += 1
            self._served_s.append(round(time.monotonic() - began, 3))
            call = self._recognized
        text = "" if is_silent(request.body) else config.text.replace(CALL_PLACEHOLDER, str(call))
        return json_response(200, {"text": text})

    def _refusal(self, request: Request, config: ClovaConfig) -> Response | None:
        """The first gateway or STT0xx refusal that applies before decoding, if any."""
        if (
            request.header("X-NCP-APIGW-API-KEY-ID") != config.api_key_id
            or request.header("X-NCP-APIGW-API-KEY") != config.api_key
        ):
            return clova_error(401, "200", "Authentication Failed")
        if not config.csr_enabled:
            return clova_error(429, *QUOTA_EXCEEDED)
        lang = request.query_value("lang")
        if not lang:
            return clova_error(400, "STT004", "Empty Language")
        if lang not in LANGUAGES:
            return clova_error(400, "STT005", "Invalid Language")
        if request.media_type() != AUDIO_MEDIA_TYPE:
            return clova_error(400, "STT002", "Invalid Content Type")
        if not request.body:
            return clova_error(400, "STT003", "Empty Sound Data")
        if len(request.body) > MAX_BODY_BYTES:
            return clova_error(413, "STT000", "Request Entity Too Large")
        return None

    def error_response(self, request: Request, status: int) -> Response:
        code, message = FAULT_ERRORS.get(status, UNEXPECTED_ERROR)
        return clova_error(status, code, message)

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


def start_fake_clova(
    config: ClovaConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeClova]:
    """Serve a fake CLOVA CSR from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeClova(config), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake until SIGINT/SIGTERM."""
    parser = cli_parser("Fake Naver CLOVA Speech Recognition (CSR).")
    parser.add_argument("--api-key-id", default=DEFAULT_API_KEY_ID)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument(
        "--text", default=DEFAULT_TEXT, help="what every call hears ({call}: its number)"
    )
    parser.add_argument("--base-latency-s", type=float, default=0.0)
    parser.add_argument("--per-audio-second-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = ClovaConfig(
        api_key_id=args.api_key_id,
        api_key=args.api_key,
        text=args.text,
        base_latency_s=args.base_latency_s,
        per_audio_second_s=args.per_audio_second_s,
    )
    serve_until_signalled(FakeClova(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

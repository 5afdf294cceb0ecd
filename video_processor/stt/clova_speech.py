"""Naver CLOVA Speech (long-form): one request transcribes a whole media file.

Unlike the per-chunk engines (``SpeechToText.transcribe_chunk``), CLOVA Speech takes the
video itself (audio and video containers, up to 6 h / 2 GB), so the flow skips the audio
chunking stage for it and calls :meth:`ClovaSpeechLongForm.transcribe_media` once::

    engine = load_block(ClovaSpeechCredentials, names.clova_speech).get_engine(language="ko")
    source = MediaSource(
        url=presigned_get_url,            # the video in S3; used when the block allows it
        path=downloaded_video_or_none,    # needed when URL sending is off (upload instead)
        duration_s=probe.duration_s,      # picks sync (short) or async+polling (long)
    )
    transcript = engine.transcribe_media(source)   # Transcript with timed segments

- With a presigned URL (``send_url``), ``POST {invoke}/recognizer/url`` sends only the URL:
  the video never passes through the pod. Otherwise ``POST {invoke}/recognizer/upload``
  streams the local file as multipart ``media`` (never read whole into memory).
- The options and their defaults are ``config.ClovaSpeechOptions``, which the settings,
  the block and this client share.
- Media of at most ``sync_max_audio_seconds`` goes ``completion=sync`` (the reply is the
  result); longer or unknown-length media goes ``async``: the reply carries a token and
  ``GET {invoke}/recognizer/{token}`` is polled, with a growing but bounded interval, until
  ``COMPLETED`` / ``FAILED`` / ``TIMEOUT`` or the overall deadline.
- NCP requires an async request to name ``callback`` (a URL NCP calls with the result) or
  ``resultToObs: true`` (the result is also stored in the domain's Object Storage). This
  client sends ``resultToObs`` and polls: the status call returns the completed result
  itself, so nothing has to be reachable from NCP and a retried task simply polls again.
  The domain therefore needs its Object Storage bucket (set when the domain is created).
- Media formats: NCP lists MP3, AAC, AC3, OGG, FLAC, WAV, M4A and AVI, MP4, MOV, WMV, FLV,
  MKV. Another container (``.webm``, ``.3gp``, ``.ts``, ...) is refused before anything is
  sent: the service would answer 500 STT006 (pre-processing failed) however often asked.
- Errors: 429, 5xx, timeouts and connection errors are retryable, except STT006; other
  refusals (401 "Invalid secret" with what to check), a ``FAILED`` job and a broken result
  are not. A ``TIMEOUT`` job or a passed deadline is a retryable
  :class:`SpeechToTextTimeout`. Transient errors while polling are retried in place (the job
  keeps running server-side) up to ``max_poll_errors`` in a row.
- The body of an error reply is unconfirmed; the message is read from the gateway envelope
  (``{"error": {"errorCode", "message"}}``) or a flat ``{"code"|"result", "message"}``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from video_processor.config import ClovaSpeechOptions
from video_processor.errors import ConfigurationError, SpeechToTextError, SpeechToTextTimeout
from video_processor.http_errors import DETAIL_CHARS, HttpErrors, reply_detail
from video_processor.models import Transcript, TranscriptSegment
from video_processor.stt.base import MediaSource

ENGINE_NAME = "clova-speech"
API_KEY_HEADER = "X-CLOVASPEECH-API-KEY"
# Pipeline language codes (STT_LANGUAGE) to CLOVA Speech's; its own codes pass through.
# ``auto`` is ``enko``, the service's Korean-English mode (the only detection it offers).
SPEECH_LANGUAGES = {"ko": "ko-KR", "en": "en-US", "ja": "ja", "zh": "zh-cn", "auto": "enko"}
NATIVE_LANGUAGES = frozenset({"ko-KR", "en-US", "enko", "ja", "zh-cn", "zh-tw"})
MAX_ASYNC_AUDIO_SECONDS = 6 * 3600
MAX_MEDIA_BYTES = 2 * 1024**3
STATE_COMPLETED = "COMPLETED"
STATE_FAILED = "FAILED"
STATE_TIMEOUT = "TIMEOUT"
PENDING_STATES = frozenset({"WAITING", "PROCESSING", "STARTED"})
# The containers NCP's request tables list for /recognizer/upload and /recognizer/url.
ACCEPTED_EXTENSIONS = frozenset(
    {"mp3", "aac", "ac3", "ogg", "flac", "wav", "m4a", "avi", "mp4", "mov", "wmv", "flv", "mkv"}
)
PREPROCESSING_FAILED = "STT006"
MS_PER_S = 1000.0
TIME_DECIMALS = 3
POLL_BACKOFF_FACTOR = 1.5
# A sync call is open while the service works: its read timeout grows with the media.
SYNC_TIMEOUT_PER_AUDIO_SECOND = 0.5
ERRORS = HttpErrors("CLOVA Speech", SpeechToTextError, SpeechToTextTimeout)


class ClovaSpeechLongForm:
    """CLOVA Speech long-form recognition of a whole file, into one timed Transcript."""

    name = ENGINE_NAME

    def __init__(
        self,
        *,
        invoke_url: str,
        secret_key: str,
        language: str = "ko",
        options: ClovaSpeechOptions | None = None,
        max_poll_errors: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.language = language
        self.clova_language = clova_language(language)
        self.options = options if options is not None else ClovaSpeechOptions()
        self.poll_max_interval_s = max(
            self.options.poll_max_interval_seconds, self.options.poll_interval_seconds
        )
        self.max_poll_errors = max_poll_errors
        self._invoke_url = invoke_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._client = httpx.Client(
            timeout=self.options.timeout_seconds,
            transport=transport,
            headers={API_KEY_HEADER: secret_key},
        )

    @property
    def send_url(self) -> bool:
        return self.options.send_url

    # -- the one public call --------------------------------------------------------------

    def transcribe_media(self, source: MediaSource) -> Transcript:
        """Transcribe the whole media; segments carry absolute times in seconds."""
        self._check_limits(source)
        completion = self._completion(source)
        params = self.params(completion)
        started = self._clock()
        if source.url is not None and self.send_url:
            reply = self._post_url(source.url, params, source)
        elif source.path is not None:
            reply = self._post_upload(source.path, params, source)
        else:
            raise ConfigurationError(
                "CLOVA Speech URL sending is off and the media has no local path to upload"
            )
        if completion == "async":
            reply = self._poll(_token_of(reply), started)
        return self._transcript(reply)

    def params(self, completion: str) -> dict[str, Any]:
        """The ``params`` object of a recognition request (async: ``resultToObs``, polled)."""
        params: dict[str, Any] = {
            "language": self.clova_language,
            "completion": completion,
            "wordAlignment": True,
            "fullText": True,
            "diarization": {"enable": self.options.diarization},
        }
        if completion == "async":
            params["resultToObs"] = True
        return params

    def close(self) -> None:
        self._client.close()

    # -- requests ---------------------------------------------------------------------------

    def _completion(self, source: MediaSource) -> str:
        duration = source.duration_s
        if duration is not None and duration <= self.options.sync_max_audio_seconds:
            return "sync"
        return "async"

    def _check_limits(self, source: MediaSource) -> None:
        if source.extension is not None and source.extension not in ACCEPTED_EXTENSIONS:
            raise SpeechToTextError(
                f"CLOVA Speech does not take .{source.extension} media (it takes "
                f"{', '.join(sorted(ACCEPTED_EXTENSIONS))}); upload one of those, or use "
                "STT_ENGINE=clova-csr or local, which convert the audio first"
            )
        if source.duration_s is not None and source.duration_s > MAX_ASYNC_AUDIO_SECONDS:
            raise SpeechToTextError(
                f"the media lasts {source.duration_s:.0f} s; CLOVA Speech takes at most "
                f"{MAX_ASYNC_AUDIO_SECONDS} s"
            )
        size = source.size_bytes
        if size is None and source.path is not None and not (source.url and self.send_url):
            try:
                size = source.path.stat().st_size
            except OSError as exc:
                raise SpeechToTextError(f"cannot read the media to upload: {exc}") from exc
        if size is not None and size > MAX_MEDIA_BYTES:
            raise SpeechToTextError(
                f"the media has {size} bytes; CLOVA Speech takes at most {MAX_MEDIA_BYTES}"
            )

    def _request_timeout(self, source: MediaSource, completion: str) -> httpx.Timeout:
        timeout_s = self.options.timeout_seconds
        if completion != "sync":
            return httpx.Timeout(timeout_s)
        audio_s = source.duration_s or 0.0
        return httpx.Timeout(timeout_s + SYNC_TIMEOUT_PER_AUDIO_SECOND * audio_s)

    def _post_url(self, url: str, params: Mapping[str, Any], source: MediaSource) -> dict[str, Any]:
        return self._call(
            "POST",
            "/recognizer/url",
            json={**params, "url": url},
            timeout=self._request_timeout(source, str(params["completion"])),
        )

    def _post_upload(
        self, path: Path, params: Mapping[str, Any], source: MediaSource
    ) -> dict[str, Any]:
        try:
            media = path.open("rb")
        except OSError as exc:
            raise SpeechToTextError(f"cannot open the media to upload: {exc}") from exc
        with media:
            # httpx streams a file object in blocks: the video is never held in memory.
            return self._call(
                "POST",
                "/recognizer/upload",
                files={
                    "media": (path.name, media, "application/octet-stream"),
                    # NCP's sample sends the params part as JSON, content type included.
                    "params": (None, json.dumps(params), "application/json"),
                },
                timeout=self._request_timeout(source, str(params["completion"])),
            )

    def _poll(self, token: str, started: float) -> dict[str, Any]:
        interval = self.options.poll_interval_seconds
        deadline_s = self.options.deadline_seconds
        errors = 0
        while True:
            remaining = deadline_s - (self._clock() - started)
            if remaining <= 0:
                raise SpeechToTextTimeout(
                    f"CLOVA Speech job {token} not done within {deadline_s:.0f} s",
                    retryable=True,
                )
            self._sleep(min(interval, remaining))
            interval = min(interval * POLL_BACKOFF_FACTOR, self.poll_max_interval_s)
            try:
                reply = self._call("GET", f"/recognizer/{token}")
            except SpeechToTextError as exc:
                errors += 1
                if not exc.retryable or errors > self.max_poll_errors:
                    raise
                continue
            errors = 0
            state = reply.get("result")
            if state in PENDING_STATES:
                continue
            return reply

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = ERRORS.request(self._client, method, f"{self._invoke_url}{path}", **kwargs)
        if response.status_code != httpx.codes.OK:
            raise _error_from_response(response)
        try:
            reply = response.json()
        except ValueError as exc:
            raise SpeechToTextError(
                f"CLOVA Speech answered 200 without JSON: {response.text[:DETAIL_CHARS]!r}",
                retryable=True,
            ) from exc
        if not isinstance(reply, dict):
            raise SpeechToTextError("CLOVA Speech answered a non-object JSON", retryable=True)
        return reply

    # -- results ----------------------------------------------------------------------------

    def _transcript(self, reply: Mapping[str, Any]) -> Transcript:
        state = reply.get("result")
        message = reply.get("message") or ""
        if state == STATE_TIMEOUT:
            raise SpeechToTextTimeout(f"CLOVA Speech job timed out: {message}", retryable=True)
        if state != STATE_COMPLETED:
            raise SpeechToTextError(f"CLOVA Speech job ended {state}: {message}")
        return Transcript(engine=self.name, language=self.language, segments=parse_segments(reply))


def clova_language(language: str) -> str:
    """CLOVA Speech's code for a pipeline language (``ko`` → ``ko-KR``)."""
    if language in NATIVE_LANGUAGES:
        return language
    try:
        return SPEECH_LANGUAGES[language]
    except KeyError:
        raise SpeechToTextError(f"CLOVA Speech does not support language {language!r}") from None


def parse_segments(reply: Mapping[str, Any]) -> list[TranscriptSegment]:
    """Map a completed result's ``segments`` (milliseconds) into ordered segments."""
    raw = reply.get("segments")
    if not isinstance(raw, list):
        raise SpeechToTextError("CLOVA Speech result has no segments list")
    segments = []
    try:
        for item in raw:
            text = str(item.get("text") or "").strip()
            if not text:
                continue
            start_s = float(item["start"]) / MS_PER_S
            end_s = max(float(item["end"]) / MS_PER_S, start_s)
            if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0:
                raise ValueError(f"bad segment time {item['start']!r}..{item['end']!r}")
            segments.append(
                TranscriptSegment(
                    start_s=round(start_s, TIME_DECIMALS),
                    end_s=round(end_s, TIME_DECIMALS),
                    text=text,
                    speaker=speaker_of(item),
                    confidence=confidence_of(item),
                )
            )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SpeechToTextError(f"CLOVA Speech result has a malformed segment: {exc}") from exc
    return sorted(segments, key=lambda segment: (segment.start_s, segment.end_s))


def confidence_of(segment: Mapping[str, Any]) -> float | None:
    """The segment's ``confidence`` (0..1), when the service gave a usable one."""
    value = segment.get("confidence")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(min(1.0, max(0.0, float(value))), 3)


def speaker_of(segment: Mapping[str, Any]) -> str | None:
    """The segment's speaker: ``speaker.name``, else ``speaker.label``, else ``diarization``.

    Which of these the service fills is not documented, so all are read.
    """
    for field_name, keys in (("speaker", ("name", "label")), ("diarization", ("label",))):
        holder = segment.get(field_name)
        if isinstance(holder, Mapping):
            for key in keys:
                value = holder.get(key)
                if value not in (None, ""):
                    return str(value)
    return None


def _token_of(reply: Mapping[str, Any]) -> str:
    token = reply.get("token")
    if not isinstance(token, str) or not token:
        state, message = reply.get("result"), reply.get("message")
        raise SpeechToTextError(
            f"CLOVA Speech async request returned no token (result {state!r}: {message!r})",
            retryable=state not in (STATE_FAILED,),
        )
    return token


def _error_from_response(response: httpx.Response) -> SpeechToTextError:
    """Map an error reply by the shared rule; 401 and STT006 are refusals no retry fixes."""
    code, _detail = reply_detail(response)
    hint = None
    if response.status_code == httpx.codes.UNAUTHORIZED:
        hint = (
            "check CLOVA_SPEECH_SECRET_KEY and CLOVA_SPEECH_INVOKE_URL "
            "(the domain's builder, integration tab)"
        )
    elif code == PREPROCESSING_FAILED:
        hint = (
            "the service cannot decode this media (format or codec), which a retry does not change"
        )
    return ERRORS.from_response(response, hint=hint)

"""Naver CLOVA Speech Recognition (CSR): one short audio per request (at most 60 s, 3 MB)."""

from __future__ import annotations

from pathlib import Path

import httpx

from video_processor.config import CLOVA_CSR_MAX_AUDIO_SECONDS, DEFAULT_CLOVA_CSR_TIMEOUT_S
from video_processor.errors import SpeechToTextError, SpeechToTextTimeout
from video_processor.http_errors import HttpErrors, reply_detail
from video_processor.models import AudioChunk, TranscriptSegment

MAX_REQUEST_BYTES = 3 * 1024 * 1024
CSR_LANGUAGES = {"ko": "Kor", "en": "Eng", "ja": "Jpn", "zh": "Chn"}
ERRORS = HttpErrors("CLOVA CSR", SpeechToTextError, SpeechToTextTimeout)


class ClovaCsrSpeechToText:
    """Sends each chunk as raw audio bytes; the chunk's span becomes one segment."""

    name = "clova-csr"

    def __init__(
        self,
        *,
        url: str,
        api_key_id: str,
        api_key: str,
        language: str = "ko",
        timeout_s: float = DEFAULT_CLOVA_CSR_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if language not in CSR_LANGUAGES:
            raise SpeechToTextError(f"CLOVA CSR does not support language {language!r}")
        self.language = language
        self._url = url
        self._client = httpx.Client(
            timeout=timeout_s,
            transport=transport,
            headers={
                "X-NCP-APIGW-API-KEY-ID": api_key_id,
                "X-NCP-APIGW-API-KEY": api_key,
                "Content-Type": "application/octet-stream",
            },
        )

    def transcribe_chunk(self, audio_path: Path, chunk: AudioChunk) -> list[TranscriptSegment]:
        audio = audio_path.read_bytes()  # bounded: a chunk is at most MAX_REQUEST_BYTES
        if len(audio) > MAX_REQUEST_BYTES or chunk.duration_s > CLOVA_CSR_MAX_AUDIO_SECONDS:
            raise SpeechToTextError(
                f"chunk {chunk.index} exceeds CLOVA CSR limits "
                f"({len(audio)} bytes, {chunk.duration_s:.1f} s)"
            )
        text = self._recognize(audio)
        if not text:
            return []
        end_s = chunk.start_s + chunk.duration_s
        return [TranscriptSegment(start_s=chunk.start_s, end_s=end_s, text=text)]

    def _recognize(self, audio: bytes) -> str:
        params = {"lang": CSR_LANGUAGES[self.language]}
        response = ERRORS.request(self._client, "POST", self._url, params=params, content=audio)
        if response.status_code != httpx.codes.OK:
            raise _error_from_response(response)
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechToTextError(
                f"CLOVA CSR answered 200 without a text field: {response.text[:200]!r}",
                retryable=True,
            ) from exc
        if not isinstance(text, str):
            raise SpeechToTextError("CLOVA CSR answered a non-string text", retryable=True)
        return text.strip()

    def close(self) -> None:
        self._client.close()


# API gateway errorCodes whose cause no retry removes, with what to do about them.
_PERMANENT_GATEWAY_ERRORS = {
    "200": "check CLOVA_API_KEY_ID and CLOVA_API_KEY (the application's Client ID and Secret)",
    "210": "the application may not call this API: check its service selection in the NCP console",
    "400": "enable the API for this application: NCP console, Application, Edit, tick "
    "CLOVA Speech Recognition (CSR)",
}


def _error_from_response(response: httpx.Response) -> SpeechToTextError:
    """Map an error reply by the shared rule, with the gateway codes no retry fixes.

    429 carries three gateway codes: 410 Throttle Limited and 420 Rate Limited pass, but
    400 Quota Exceeded is what NCP answers when the application has not selected the CSR
    API; 401 is a wrong key or a permission the application lacks.
    """
    code, _detail = reply_detail(response)
    status = response.status_code
    hint = _PERMANENT_GATEWAY_ERRORS.get(code) if status in (401, 403, 429) else None
    if hint is None and status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        hint = _PERMANENT_GATEWAY_ERRORS["200"]
    return ERRORS.from_response(response, hint=hint)

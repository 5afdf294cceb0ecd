"""Fake Naver CLOVA Speech Recognition (CSR, short audio): ``POST /recog/v1/stt?lang=Kor``.

``schema`` holds what the vendor documents (limits, error codes and bodies), ``behaviour``
the checks, latency and answers (``FakeClova``), ``service`` the ASGI app.

Run it alone with ``python -m local_stack.fake_clova --port 8091`` (every scalar field of
``ClovaConfig`` is a flag: ``--text``, ``--base-latency-s``, ...).
"""

from __future__ import annotations

from local_stack.fake_clova.behaviour import (
    DEFAULT_API_KEY,
    DEFAULT_API_KEY_ID,
    DEFAULT_TEXT,
    AudioProbe,
    ClovaConfig,
    FakeClova,
    probe_audio_file,
)
from local_stack.fake_clova.schema import MAX_BODY_BYTES, STT_PATH
from local_stack.http_fake import DEFAULT_HOST, FakeHTTPServer, start_server

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_KEY_ID",
    "DEFAULT_TEXT",
    "MAX_BODY_BYTES",
    "STT_PATH",
    "AudioProbe",
    "ClovaConfig",
    "FakeClova",
    "probe_audio_file",
    "start_fake_clova",
]


def start_fake_clova(
    config: ClovaConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeClova]:
    """Serve a fake CLOVA CSR from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeClova(config), host=host, port=port)

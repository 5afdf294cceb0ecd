"""Fake Naver CLOVA Speech (long-form recognition), as documented.

Serves, under an invoke path like the real ``/external/v1/{id}/{key}``:

- ``POST {invoke}/recognizer/upload``: multipart ``media`` (file) + ``params`` (JSON string);
- ``POST {invoke}/recognizer/url``: JSON params with ``url`` (fetched by the fake, e.g. a
  presigned URL of the local moto server);
- ``POST {invoke}/recognizer/object-storage``: JSON params with ``dataKey`` (fetched from
  ``object_storage_url``/``dataKey`` when that is configured, refused otherwise);
- ``GET {invoke}/recognizer/{token}``: the state of an async job.

``schema`` holds the documented params, limits and errors, ``behaviour`` the checks, jobs and
results (``FakeClovaSpeech``), ``service`` the ASGI app.

Run it alone with ``python -m local_stack.fake_clova_speech --port 8093`` (every scalar
field of ``ClovaSpeechConfig`` is a flag: ``--secret-key``, ``--invoke-path``, ...).
"""

from __future__ import annotations

from local_stack.fake_clova_speech.behaviour import (
    DEFAULT_INVOKE_PATH,
    DEFAULT_SECRET_KEY,
    DEFAULT_TEXT,
    ClovaSpeechConfig,
    FakeClovaSpeech,
)
from local_stack.fake_clova_speech.schema import Part, parse_multipart
from local_stack.http_fake import DEFAULT_HOST, FakeHTTPServer, start_server

__all__ = [
    "DEFAULT_INVOKE_PATH",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_TEXT",
    "ClovaSpeechConfig",
    "FakeClovaSpeech",
    "Part",
    "parse_multipart",
    "start_fake_clova_speech",
]


def start_fake_clova_speech(
    config: ClovaSpeechConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[FakeClovaSpeech]:
    """Serve a fake CLOVA Speech from a daemon thread (port 0 picks a free port)."""
    return start_server(FakeClovaSpeech(config), host=host, port=port)

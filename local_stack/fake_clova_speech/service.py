"""The fake CLOVA Speech's ASGI app: the recognizer endpoints under the invoke path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi import Response as AsgiResponse

from local_stack.fake_clova_speech.schema import (
    RECOGNIZER,
    ObjectStorageRequest,
    SpeechError,
    UrlRequest,
)
from local_stack.http_fake import FakeRequest, PendingFault, fake_app, to_asgi

if TYPE_CHECKING:
    from local_stack.fake_clova_speech.behaviour import FakeClovaSpeech

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["media", "params"],
                    "properties": {
                        "media": {"type": "string", "format": "binary"},
                        "params": {"type": "string", "description": "RecognitionParams JSON"},
                    },
                }
            }
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": SpeechError} for status in (400, 401, 404, 413, 500)
}


def create_app(fake: FakeClovaSpeech) -> FastAPI:
    app = fake_app(
        fake,
        title="Fake CLOVA Speech (long-form recognition)",
        description="Upload, URL and Object Storage recognition; sync and async jobs.",
    )
    # The invoke path is runtime config: the behaviour's gate checks it (404 otherwise).
    recognizer = "/{invoke:path}" + RECOGNIZER

    @app.post(f"{recognizer}/upload", responses=ERRORS, openapi_extra=UPLOAD_BODY)
    def upload(invoke: str, request: FakeRequest, fault: PendingFault) -> AsgiResponse:
        fake.gate(request)
        return to_asgi(fake.upload(request, fault))

    @app.post(f"{recognizer}/url", responses=ERRORS)
    def from_url(
        invoke: str, body: UrlRequest, request: FakeRequest, fault: PendingFault
    ) -> AsgiResponse:
        fake.json_gate(request)
        return to_asgi(fake.from_url(body, fault))

    @app.post(f"{recognizer}/object-storage", responses=ERRORS)
    def from_object_storage(
        invoke: str, body: ObjectStorageRequest, request: FakeRequest, fault: PendingFault
    ) -> AsgiResponse:
        fake.json_gate(request)
        return to_asgi(fake.from_object_storage(body, fault))

    @app.get(f"{recognizer}/{{token}}", responses=ERRORS)
    def poll(invoke: str, token: str, request: FakeRequest) -> AsgiResponse:
        fake.gate(request)
        return to_asgi(fake.poll(token))

    return app

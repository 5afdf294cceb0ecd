"""The fake CLOVA CSR's ASGI app: ``POST /recog/v1/stt?lang=...`` with a raw audio body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query
from fastapi import Response as AsgiResponse

from local_stack.fake_clova.schema import STT_PATH, GatewayError, Language, SttReply
from local_stack.http_fake import FakeRequest, PendingFault, fake_app, to_asgi

if TYPE_CHECKING:
    from local_stack.fake_clova.behaviour import FakeClova

AUDIO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": GatewayError} for status in (400, 401, 404, 413, 429, 500)
}


def create_app(fake: FakeClova) -> FastAPI:
    app = fake_app(
        fake,
        title="Fake CLOVA Speech Recognition (CSR)",
        description="Short audio (at most 60 s, 3 MB) to text, as NCP documents it.",
    )

    @app.post(STT_PATH, response_model=SttReply, responses=ERRORS, openapi_extra=AUDIO_BODY)
    def recognize(
        request: FakeRequest, fault: PendingFault, lang: Annotated[Language, Query()]
    ) -> AsgiResponse:
        return to_asgi(fake.route(request, fault))

    return app

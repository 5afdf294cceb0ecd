"""The fake Messages API's ASGI app: ``POST /v1/messages`` and ``/v1/messages/count_tokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi import Response as AsgiResponse

from local_stack.fake_anthropic.schema import (
    COUNT_TOKENS_PATH,
    ERRORS_BY_STATUS,
    MESSAGES_PATH,
    CountTokensRequest,
    ErrorBody,
    MessagesRequest,
)
from local_stack.http_fake import FakeRequest, PendingFault, fake_app, to_asgi

if TYPE_CHECKING:
    from local_stack.fake_anthropic.behaviour import FakeAnthropic

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in ERRORS_BY_STATUS
}


def create_app(fake: FakeAnthropic) -> FastAPI:
    app = fake_app(
        fake,
        title="Fake Anthropic Messages API",
        description="Validates like the real API; answers with a summary derived from the prompt.",
    )

    @app.post(MESSAGES_PATH, responses=ERRORS)
    def messages(body: MessagesRequest, request: FakeRequest, fault: PendingFault) -> AsgiResponse:
        return to_asgi(fake.messages(request, body, fault))

    @app.post(COUNT_TOKENS_PATH, responses=ERRORS)
    def count_tokens(body: CountTokensRequest, request: FakeRequest) -> AsgiResponse:
        return to_asgi(fake.count_tokens(request, body))

    return app

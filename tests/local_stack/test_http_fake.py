"""The machinery every fake is served by: vendor error bodies, faults, stats, docs, flags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import Response as AsgiResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from local_stack.fake_clova import ClovaConfig
from local_stack.http_fake import (
    FakeRequest,
    FakeService,
    PendingFault,
    Refused,
    Request,
    Response,
    fake_app,
    is_json_error,
    json_response,
    parse_command_line,
    start_server,
    to_asgi,
    validation_message,
)


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "hi"


class Word(BaseModel):
    word: str = Field(min_length=1)


class EchoFake(FakeService[EchoConfig]):
    """The smallest fake: ``POST /echo`` answers the greeting and the word."""

    name = "echo"
    extra_fault_kinds = frozenset({"shout"})

    def __init__(self) -> None:
        super().__init__(EchoConfig())

    def create_app(self) -> FastAPI:
        app = fake_app(self, title="echo", description="An echo service.")

        @app.post("/echo")
        def echo(body: Word, request: FakeRequest, fault: PendingFault) -> AsgiResponse:
            if body.word == "crash":
                raise RuntimeError("the endpoint broke")
            if body.word == "refuse":
                raise Refused(json_response(409, {"vendor": "refused"}))
            word = body.word.upper() if fault is not None else body.word
            payload: dict[str, JsonValue] = {
                "echo": f"{self.config.greeting} {word}",
                "id": request.request_id,
            }
            return to_asgi(json_response(200, payload))

        return app

    def accepts_faults(self, method: str, path: str) -> bool:
        return path == "/echo"

    def error_response(self, request: Request, status: int) -> Response:
        return json_response(status, {"vendor_error": status})

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        return json_response(
            400, {"vendor_invalid": validation_message(errors), "parsed": not is_json_error(errors)}
        )

    def not_found(self, request: Request) -> Response:
        return json_response(404, {"vendor_not_found": request.path})

    def reply_headers(self, request: Request) -> dict[str, str]:
        return {"x-request-id": request.request_id}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with start_server(EchoFake()) as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_a_body_the_schema_refuses_gets_the_vendor_error_not_fastapis_422(
    client: httpx.Client,
) -> None:
    empty = client.post("/echo", json={"word": ""})
    assert empty.status_code == 400
    assert empty.json()["vendor_invalid"].startswith("word: String should have at least 1")
    not_json = client.post("/echo", content=b"{oops", headers={"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()["parsed"]) == (400, False)


def test_unknown_paths_and_methods_get_the_vendor_not_found_and_are_counted(
    client: httpx.Client,
) -> None:
    assert client.get("/echo").json() == {"vendor_not_found": "/echo"}
    assert client.post("/elsewhere").status_code == 404
    assert client.get("/docs").json() == {"vendor_not_found": "/docs"}  # docs live in admin
    stats = client.get("/__admin/stats").json()
    assert (stats["requests"], stats["by_status"]) == (3, {"404": 3})


def test_refusals_crashes_and_reply_headers(client: httpx.Client) -> None:
    assert client.post("/echo", json={"word": "refuse"}).json() == {"vendor": "refused"}
    crashed = client.post("/echo", json={"word": "crash"})
    assert (crashed.status_code, crashed.json()) == (
        500,
        {"detail": "the fake crashed; see its log"},
    )
    answered = client.post("/echo", json={"word": "a"})
    assert answered.json() == {"echo": "hi a", "id": answered.headers["x-request-id"]}
    assert client.get("/__admin/stats").json()["by_status"] == {"200": 1, "409": 1, "500": 1}


def test_faults_answer_before_the_schema_and_own_kinds_reach_the_endpoint(
    client: httpx.Client,
) -> None:
    faults = [{"status": 503}, {"kind": "shout"}]
    assert client.post("/__admin/faults", json={"faults": faults}).json() == {"pending": 2}
    assert client.post("/echo", json={"word": ""}).json() == {"vendor_error": 503}
    assert client.post("/echo", json={"word": "a"}).json()["echo"] == "hi A"
    unknown = client.post("/__admin/faults", json={"faults": [{"kind": "whisper"}]})
    assert unknown.status_code == 400 and "whisper" in unknown.json()["detail"]
    assert client.get("/__admin/stats").json()["faults_applied"] == 2


def test_admin_api_documents_the_fake_and_refuses_unknown_endpoints(client: httpx.Client) -> None:
    assert client.get("/__admin/docs").status_code == 200
    assert "/echo" in client.get("/__admin/openapi.json").json()["paths"]
    missing = client.get("/__admin/nothing")
    assert missing.status_code == 404 and "no admin endpoint" in missing.json()["detail"]
    bad = client.post("/__admin/config", json={"greeting": 3})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("greeting:")
    assert client.post("/__admin/config", json={"greeting": "안녕"}).json() == {"greeting": "안녕"}
    assert client.post("/echo", json={"word": "a"}).json()["echo"] == "안녕 a"


def test_command_line_flags_are_the_config_fields() -> None:
    host, port, config = parse_command_line(
        ClovaConfig, "fake", ["--port=9", "--csr-enabled=false", "--base-latency-s", "0.5"]
    )
    assert (host, port) == ("127.0.0.1", 9)
    assert config == ClovaConfig(csr_enabled=False, base_latency_s=0.5)
    with pytest.raises(SystemExit):
        parse_command_line(ClovaConfig, "fake", ["--base-latency-s=-1"])

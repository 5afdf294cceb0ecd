"""The fake Messages API answers like the documented API, and the real SDK understands it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import anthropic
import httpx
import pytest
from anthropic._data import DEPRECATED_MODELS

from local_stack.fake_anthropic import (
    CONTEXT_WINDOW_TOKENS,
    COUNT_TOKENS_PATH,
    DEFAULT_API_KEY,
    KNOWN_MODELS,
    MAX_REQUEST_BYTES,
    MESSAGES_PATH,
    SUMMARY_SOURCE_CHARS,
    AnthropicConfig,
    FakeAnthropic,
    end_of_life,
    known_model,
    start_fake_anthropic,
)
from local_stack.http_fake import FakeHTTPServer
from tests.local_stack.conftest import CliRunner
from video_processor.llm.prompt import part_block, reduce_message, transcript_message
from video_processor.llm.structured import KeyPointDraft, SummaryDraft, SummaryLimits
from video_processor.models import TranscriptSegment

MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
TRANSCRIPT = "안녕하세요 여러분. 오늘은 프리펙트로 영상 파이프라인을 만드는 법을 알아봅니다."
PROMPT = f"다음 녹취록을 요약해 주세요.\n<transcript>\n{TRANSCRIPT}\n</transcript>"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHTTPServer[FakeAnthropic]]:
    with start_fake_anthropic() as server:
        yield server


@pytest.fixture(scope="module")
def shared_client(fake: FakeHTTPServer[FakeAnthropic]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=30) as client:
        yield client


@pytest.fixture
def client(shared_client: httpx.Client) -> httpx.Client:
    """The module's client, talking to a fake just reset to its start state."""
    shared_client.post("/__admin/reset").raise_for_status()
    return shared_client


@pytest.fixture
def sdk(fake: FakeHTTPServer[FakeAnthropic], client: httpx.Client) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=DEFAULT_API_KEY, base_url=fake.url, max_retries=0) as sdk:
        yield sdk


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def _create(client: httpx.Client, body: object = None, **headers: str) -> httpx.Response:
    payload = _body() if body is None else body
    return client.post(MESSAGES_PATH, json=payload, headers={**HEADERS, **headers})


def _error(response: httpx.Response) -> tuple[int, str, str]:
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["request_id"] == response.headers["request-id"]
    return response.status_code, payload["error"]["type"], payload["error"]["message"]


def test_sdk_gets_a_summary_of_the_transcript(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(
        model=MODEL,
        max_tokens=1000,
        system="당신은 한국어 요약가입니다.",
        messages=[{"role": "user", "content": PROMPT}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == f"요약: {TRANSCRIPT}"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == -(-len(message.content[0].text) // 2)
    assert message._request_id is not None
    assert message._request_id.startswith("req_")


def test_sdk_raises_rate_limit_error_on_429(sdk: anthropic.Anthropic, client: httpx.Client) -> None:
    client.post("/__admin/config", json={"retry_after_s": 7})
    client.post("/__admin/faults", json={"faults": [{"status": 429}]})
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": PROMPT}]
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.request_id == caught.value.response.headers["request-id"]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_sdk_counts_tokens(sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "가나"}])
    assert counted.input_tokens == 1


def test_success_body_matches_the_contract(client: httpx.Client) -> None:
    response = _create(client)
    assert response.status_code == 200
    payload = response.json()
    assert re.fullmatch(r"msg_[0-9a-f]+", payload.pop("id"))
    usage = payload.pop("usage")
    assert payload == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": f"요약: {TRANSCRIPT}"}],
        "model": MODEL,
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    assert set(usage) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    assert re.fullmatch(r"req_[0-9a-f]+", response.headers["request-id"])
    stats = client.get("/__admin/stats").json()
    assert stats["messages"] == 1
    assert stats["input_tokens"] == usage["input_tokens"]
    assert stats["output_tokens"] == usage["output_tokens"]


def test_summary_takes_the_start_of_the_last_user_message(client: httpx.Client) -> None:
    long_text = "가나다라마바사 " * 100
    messages = [
        {"role": "user", "content": "<transcript>처음 것</transcript>"},
        {"role": "assistant", "content": "네"},
        {"role": "user", "content": [{"type": "text", "text": long_text}]},
    ]
    text = _create(client, _body(messages=messages)).json()["content"][0]["text"]
    assert text == "요약: " + " ".join(long_text.split())[:SUMMARY_SOURCE_CHARS]


@pytest.mark.parametrize("model", sorted(KNOWN_MODELS - set(DEPRECATED_MODELS)))
def test_accepts_every_current_model_id_of_the_sdk(client: httpx.Client, model: str) -> None:
    response = _create(client, _body(model=model))
    assert response.status_code == 200
    assert response.json()["model"] == model


def test_a_deprecated_model_is_served_until_its_end_of_life_then_gone() -> None:
    assert end_of_life("claude-sonnet-4-5") == date(2026, 11, 30)
    assert (
        known_model("claude-sonnet-4-5-20250929", today=date(2026, 11, 30)) == "claude-sonnet-4-5"
    )
    assert known_model("claude-sonnet-4-5-20250929", today=date(2026, 12, 1)) is None
    assert known_model("claude-sonnet-5-5", today=date(2030, 1, 1)) == "claude-sonnet-5-5"


@pytest.mark.parametrize("stop_reason", ["refusal", "pause_turn", "model_context_window_exceeded"])
@pytest.mark.parametrize("with_tool", [False, True], ids=["text", "tool"])
def test_faults_serve_every_stop_reason(
    client: httpx.Client, stop_reason: str, with_tool: bool
) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": stop_reason}]}).raise_for_status()
    tool = {"name": "record_summary", "input_schema": {"type": "object"}}
    extra = {"tools": [tool], "tool_choice": {"type": "tool", "name": "record_summary"}}
    reply = _create(client, _body(**(extra if with_tool else {}))).json()
    assert reply["stop_reason"] == stop_reason
    assert not any(block["type"] == "tool_use" for block in reply["content"])
    assert (reply["content"] == []) is (stop_reason == "refusal")


@pytest.mark.parametrize(
    "headers",
    [
        {"anthropic-version": "2023-06-01"},
        {**HEADERS, "x-api-key": "sk-ant-wrong"},
        {"anthropic-version": "2023-06-01", "Authorization": "Bearer sk-ant-wrong"},
        {"anthropic-version": "2023-06-01", "Authorization": DEFAULT_API_KEY},
    ],
)
def test_refuses_missing_or_wrong_api_key(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.post(MESSAGES_PATH, json=_body(), headers=headers)
    assert _error(response)[:2] == (401, "authentication_error")


def test_accepts_the_key_as_a_bearer_token(client: httpx.Client) -> None:
    headers = {"anthropic-version": "2023-06-01", "Authorization": f"Bearer {DEFAULT_API_KEY}"}
    assert client.post(MESSAGES_PATH, json=_body(), headers=headers).status_code == 200


def test_refuses_missing_or_unknown_version(client: httpx.Client) -> None:
    response = client.post(MESSAGES_PATH, json=_body(), headers={"x-api-key": DEFAULT_API_KEY})
    assert _error(response) == (
        400,
        "invalid_request_error",
        "anthropic-version: header is required",
    )
    assert _error(_create(client, **{"anthropic-version": "2099-01-01"}))[1] == (
        "invalid_request_error"
    )


def test_refuses_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post(MESSAGES_PATH, content=b"{not json", headers=HEADERS)
    assert _error(response)[:2] == (400, "invalid_request_error")
    response = client.post(MESSAGES_PATH, json=["a", "list"], headers=HEADERS)
    assert _error(response)[:2] == (400, "invalid_request_error")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"model": None}, "model: Field required"),
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"messages": None}, "messages: Field required"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": 64_001}, "maximum allowed number of output tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ""}]}, "non-empty content"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": " "}]}]}, "text"),
        ({"temperature": 1.5}, "temperature"),
        ({"stream": True}, "stream"),
    ],
)
def test_refuses_invalid_bodies(
    client: httpx.Client, changes: dict[str, Any], fragment: str
) -> None:
    status, error_type, message = _error(_create(client, _body(**changes)))
    assert (status, error_type) == (400, "invalid_request_error")
    assert fragment in message


def test_accepts_an_empty_final_assistant_message(client: httpx.Client) -> None:
    messages = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": ""}]
    assert _create(client, _body(messages=messages)).status_code == 200


def test_refuses_a_prompt_over_the_context_window(client: httpx.Client) -> None:
    too_long = "가" * (CONTEXT_WINDOW_TOKENS * 2 + 1)
    response = _create(client, _body(messages=[{"role": "user", "content": too_long}]))
    status, error_type, message = _error(response)
    assert (status, error_type) == (400, "invalid_request_error")
    assert message.startswith("prompt is too long")


@pytest.mark.parametrize(
    "model", ["claude-3-7-sonnet-latest", "claude-sonnet-4-5-latest", "gpt-4", "claude-sonnet-4-5"]
)
def test_refuses_unknown_or_retired_models(client: httpx.Client, model: str) -> None:
    expected = (404, "not_found_error", f"model: {model}")
    assert _error(_create(client, _body(model=model))) == expected


def test_refuses_requests_over_32_megabytes(client: httpx.Client) -> None:
    response = client.post(MESSAGES_PATH, content=b" " * (MAX_REQUEST_BYTES + 1), headers=HEADERS)
    assert _error(response)[:2] == (413, "request_too_large")


def test_cuts_the_reply_at_max_tokens(client: httpx.Client) -> None:
    payload = _create(client, _body(max_tokens=5)).json()
    assert payload["stop_reason"] == "max_tokens"
    assert payload["usage"]["output_tokens"] == 5
    assert payload["content"][0]["text"] == f"요약: {TRANSCRIPT}"[:10]


def test_stops_at_a_stop_sequence(client: httpx.Client) -> None:
    payload = _create(client, _body(stop_sequences=["오늘"])).json()
    assert payload["stop_reason"] == "stop_sequence"
    assert payload["stop_sequence"] == "오늘"
    assert payload["content"][0]["text"] == "요약: 안녕하세요 여러분. "


def test_text_and_latency_are_configurable(client: httpx.Client) -> None:
    config = {"text": "고정된 요약", "base_latency_s": 0.1, "per_output_token_s": 0.05}
    assert client.post("/__admin/config", json=config).status_code == 200
    started = time.monotonic()
    payload = _create(client).json()
    assert payload["content"][0]["text"] == "고정된 요약"
    assert time.monotonic() - started >= 0.1 + 0.05 * payload["usage"]["output_tokens"]
    client.post("/__admin/reset")
    assert _create(client).json()["content"][0]["text"] == f"요약: {TRANSCRIPT}"


def test_constructor_config_sets_the_key_and_reply() -> None:
    config = AnthropicConfig(api_key="other-key", text="처음부터 고정")
    with (
        start_fake_anthropic(config) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert _create(client).status_code == 401
        response = _create(client, **{"x-api-key": "other-key"})
        assert response.json()["content"][0]["text"] == "처음부터 고정"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_faults_carry_the_matching_error_type(
    client: httpx.Client, status: int, error_type: str
) -> None:
    client.post("/__admin/faults", json={"faults": [{"status": status}]})
    response = _create(client)
    assert _error(response)[:2] == (status, error_type)
    assert ("retry-after" in response.headers) == (status == 429)
    assert _create(client).status_code == 200


def test_status_fault_overrides(client: httpx.Client) -> None:
    override = {"type": "error", "error": {"type": "api_error", "message": "직접 지정"}}
    faults = [{"status": 503, "body": override, "headers": {"x-should-retry": "false"}}]
    client.post("/__admin/faults", json={"faults": faults})
    response = _create(client)
    assert response.status_code == 503
    assert response.json() == override
    assert response.headers["x-should-retry"] == "false"
    assert "request-id" in response.headers


def test_max_tokens_and_empty_faults(client: httpx.Client) -> None:
    faults = [{"kind": "max_tokens"}, {"kind": "empty"}]
    client.post("/__admin/faults", json={"faults": faults})
    cut = _create(client).json()
    assert cut["stop_reason"] == "max_tokens"
    assert cut["usage"]["output_tokens"] == 1000
    assert len(cut["content"][0]["text"]) < len(f"요약: {TRANSCRIPT}")
    empty = _create(client).json()
    assert empty["content"] == []
    assert empty["usage"]["output_tokens"] == 0
    assert _create(client).json()["stop_reason"] == "end_turn"


def test_malformed_and_timeout_faults(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "malformed"}]})
    response = _create(client)
    assert response.status_code == 200
    assert "request-id" in response.headers
    with pytest.raises(ValueError):
        response.json()
    client.post("/__admin/faults", json={"faults": [{"kind": "timeout", "seconds": 0.5}]})
    with pytest.raises(httpx.ReadTimeout):
        client.post(MESSAGES_PATH, json=_body(), headers=HEADERS, timeout=0.1)
    assert _create(client).status_code == 200


def test_sdk_sees_a_timeout_fault_as_a_timeout(
    fake: FakeHTTPServer[FakeAnthropic], client: httpx.Client
) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "timeout", "seconds": 0.5}]})
    with (
        anthropic.Anthropic(
            api_key=DEFAULT_API_KEY, base_url=fake.url, max_retries=0, timeout=0.1
        ) as sdk,
        pytest.raises(anthropic.APITimeoutError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "a"}])


def test_count_tokens_endpoint(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "가나다"}], "system": "라"}
    response = client.post(COUNT_TOKENS_PATH, json=body, headers=HEADERS)
    assert response.json() == {"input_tokens": 3}
    assert "request-id" in response.headers
    response = client.post(COUNT_TOKENS_PATH, json=body, headers={"x-api-key": "wrong"})
    assert _error(response)[:2] == (401, "authentication_error")
    response = client.post(COUNT_TOKENS_PATH, json={"model": MODEL}, headers=HEADERS)
    assert _error(response)[:2] == (400, "invalid_request_error")


def test_fault_path_narrows_it_to_one_endpoint(client: httpx.Client) -> None:
    client.post("/__admin/faults", json={"faults": [{"status": 529, "path": MESSAGES_PATH}]})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "가나"}]}
    assert client.post(COUNT_TOKENS_PATH, json=body, headers=HEADERS).status_code == 200
    assert _create(client).status_code == 529


def test_unknown_path_is_a_not_found_error(client: httpx.Client) -> None:
    assert _error(client.get("/v1/models/unknown", headers=HEADERS))[:2] == (404, "not_found_error")


def test_refuses_fault_kinds_of_other_fakes(client: httpx.Client) -> None:
    response = client.post("/__admin/faults", json={"faults": [{"kind": "drop"}]})
    assert response.status_code == 400


def test_cli_prints_its_url_and_stops_on_sigterm(run_cli: CliRunner) -> None:
    with run_cli("local_stack.fake_anthropic", "--api-key", "k") as url:
        headers = {**HEADERS, "x-api-key": "k"}
        assert httpx.post(f"{url}{MESSAGES_PATH}", json=_body(), headers=headers).is_success


TOOL = {
    "name": "record_summary",
    "input_schema": {"type": "object", "properties": {"summary": {"type": "string"}}},
}
# Written by the pipeline's own formatter: the fake reads it with the matching readers.
NUMBERED = transcript_message(
    [
        TranscriptSegment(id=i, start_s=5 * i, end_s=5 * i + 5, text=text)
        for i, text in enumerate(
            [
                "안녕하세요 여러분 오늘은 프리펙트를 배웁니다.",
                "플로우와 태스크의 차이를 설명합니다.",
                "재시도 설정을 예제로 살펴봅니다.",
            ]
        )
    ],
    SummaryLimits(min_chars=10, max_chars=60),
)


def _tool_body(**changes: Any) -> dict[str, Any]:
    tool_changes: dict[str, Any] = {
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": "record_summary"},
        "messages": [{"role": "user", "content": NUMBERED}],
    }
    return _body(**{**tool_changes, **changes})


def test_forced_tool_call_is_answered_with_a_tool_use_block(client: httpx.Client) -> None:
    payload = _create(client, _tool_body()).json()
    assert payload["stop_reason"] == "tool_use"
    [block] = payload["content"]
    assert block["type"] == "tool_use" and block["name"] == "record_summary"
    assert block["id"].startswith("toolu_")
    tool_input = block["input"]
    assert [p["segment_ids"] for p in tool_input["key_points"]] == [[0], [1], [2]]
    assert 10 <= len(tool_input["summary"]) <= 60
    assert tool_input["language"] == "ko"
    assert tool_input["title"] and tool_input["keywords"]


def test_tool_input_for_a_reduce_message_cites_the_part_summaries(client: httpx.Client) -> None:
    draft = SummaryDraft(
        title="제목",
        summary="부분 요약입니다",
        key_points=[KeyPointDraft(text="플로우를 배웁니다", segment_ids=[4, 2])],
        keywords=["플로우"],
        language="ko",
    )
    message = reduce_message(
        [part_block(draft, 0, 60, {2: 10.0, 4: 20.0})], SummaryLimits(min_chars=5, max_chars=40)
    )
    body = _tool_body(messages=[{"role": "user", "content": message}])
    tool_input = _create(client, body).json()["content"][0]["input"]
    assert [point["segment_ids"] for point in tool_input["key_points"]] == [[2, 4]]
    assert tool_input["summary"] == "플로우를 배웁니다 부분 요약입니다"


def test_tool_input_config_and_spoiling_faults(client: httpx.Client) -> None:
    client.post("/__admin/config", json={"tool_input": {"summary": "고정"}})
    assert _create(client, _tool_body()).json()["content"][0]["input"] == {"summary": "고정"}
    client.post("/__admin/reset")
    faults = [{"kind": "invalid_tool_input"}, {"kind": "bad_citation"}]
    client.post("/__admin/faults", json={"faults": faults})
    invalid = _create(client, _tool_body()).json()["content"][0]["input"]
    assert "key_points" not in invalid and invalid["summary"] == 42
    cited = _create(client, _tool_body()).json()["content"][0]["input"]["key_points"][0]
    assert cited["segment_ids"] == [999_999]


def test_refuses_a_tool_choice_naming_an_unknown_tool(client: httpx.Client) -> None:
    body = _tool_body(tool_choice={"type": "tool", "name": "other"})
    assert _error(_create(client, body))[:2] == (400, "invalid_request_error")
    bad_schema = _tool_body(tools=[{"name": "record_summary", "input_schema": {"type": "string"}}])
    assert _error(_create(client, bad_schema))[:2] == (400, "invalid_request_error")


def test_a_marked_prefix_is_written_to_the_cache_then_read(client: httpx.Client) -> None:
    system = [{"type": "text", "text": "규칙 " * 1200, "cache_control": {"type": "ephemeral"}}]
    first = _create(client, _tool_body(system=system)).json()["usage"]
    second = _create(client, _tool_body(system=system)).json()["usage"]
    assert first["cache_creation_input_tokens"] > 1024 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["input_tokens"] == first["input_tokens"]
    short = [{"type": "text", "text": "짧은 규칙", "cache_control": {"type": "ephemeral"}}]
    usage = _create(client, _tool_body(system=short)).json()["usage"]
    assert usage["cache_creation_input_tokens"] == 0  # under the minimum: not cached
    stats = client.get("/__admin/stats").json()
    assert stats["cache_read_input_tokens"] == second["cache_read_input_tokens"]


def test_count_tokens_counts_tools(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "가나다"}]}
    plain = client.post(COUNT_TOKENS_PATH, json=body, headers=HEADERS).json()["input_tokens"]
    with_tools = client.post(
        COUNT_TOKENS_PATH, json={**body, "tools": [TOOL]}, headers=HEADERS
    ).json()["input_tokens"]
    assert with_tools > plain


def test_stats_hold_the_last_request_that_reached_the_model(client: httpx.Client) -> None:
    assert client.get("/__admin/stats").json()["last_request"] is None
    system = [{"type": "text", "text": "규칙", "cache_control": {"type": "ephemeral"}}]
    _create(client, _tool_body(system=system))
    client.post("/__admin/faults", json={"faults": [{"status": 529}]})
    assert _create(client, _body(messages=[{"role": "user", "content": "거절됨"}])).is_error
    last = client.get("/__admin/stats").json()["last_request"]
    assert last["system"] == system  # the 529 answered before the model saw its request
    assert last["messages"] == [{"role": "user", "content": NUMBERED}]
    assert last["tool_choice"]["name"] == "record_summary" and last["max_tokens"] == 1000
    client.post("/__admin/reset")
    assert client.get("/__admin/stats").json()["last_request"] is None

"""The fake CLOVA CSR refuses what the real service's documentation says it refuses."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from local_stack.fake_clova import (
    DEFAULT_API_KEY,
    DEFAULT_API_KEY_ID,
    DEFAULT_TEXT,
    MAX_BODY_BYTES,
    STT_PATH,
    ClovaConfig,
    FakeClova,
    start_fake_clova,
)
from local_stack.http_fake import FakeHTTPServer
from tests.local_stack.conftest import CliRunner

AUTH = {"X-NCP-APIGW-API-KEY-ID": DEFAULT_API_KEY_ID, "X-NCP-APIGW-API-KEY": DEFAULT_API_KEY}
OCTET = {"Content-Type": "application/octet-stream"}
STT_URL = f"{STT_PATH}?lang=Kor"


def _ffmpeg(path: Path, *args: str) -> bytes:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", *args, str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_bytes()


def _sine(seconds: int) -> list[str]:
    return ["-i", f"sine=frequency=440:duration={seconds}"]


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("audio")
    mono_16k = ["-ar", "16000", "-ac", "1"]
    return {
        "flac_2s": _ffmpeg(folder / "2s.flac", *_sine(2), *mono_16k),
        "wav_2s": _ffmpeg(folder / "2s.wav", *_sine(2), *mono_16k),
        "flac_60s": _ffmpeg(folder / "60s.flac", *_sine(60), *mono_16k),
        "flac_61s": _ffmpeg(folder / "61s.flac", *_sine(61), *mono_16k),
        "flac_8k": _ffmpeg(folder / "8k.flac", *_sine(2), "-ar", "8000", "-ac", "1"),
        "m4a_2s": _ffmpeg(folder / "2s.m4a", *_sine(2), *mono_16k, "-c:a", "aac"),
    }


@pytest.fixture(scope="module")
def clova() -> Iterator[FakeHTTPServer[FakeClova]]:
    with start_fake_clova() as server:
        yield server


@pytest.fixture(scope="module")
def shared_client(clova: FakeHTTPServer[FakeClova]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=clova.url, timeout=10) as client:
        yield client


@pytest.fixture
def client(shared_client: httpx.Client) -> httpx.Client:
    """The module's client, talking to a fake just reset to its start state."""
    shared_client.post("/__admin/reset").raise_for_status()
    return shared_client


def _stt(client: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return client.post(STT_URL, content=body, headers={**AUTH, **OCTET, **headers})


def _error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["errorCode"], error["message"]


def test_recognizes_flac_and_wav(client: httpx.Client, audio: dict[str, bytes]) -> None:
    for name in ("flac_2s", "wav_2s"):
        response = _stt(client, audio[name])
        assert response.status_code == 200
        assert response.json() == {"text": DEFAULT_TEXT}
    stats = client.get("/__admin/stats").json()
    assert stats["requests"] == 2
    assert stats["recognized"] == 2
    assert stats["audio_seconds"] == pytest.approx(4.0, abs=0.1)
    # One served time per recognised call (what the latency bench reads per chunk).
    assert len(stats["served_s"]) == 2 and all(served >= 0 for served in stats["served_s"])


def test_sixty_seconds_is_the_last_accepted_length(
    client: httpx.Client, audio: dict[str, bytes]
) -> None:
    assert _stt(client, audio["flac_60s"]).status_code == 200
    assert len(audio["flac_61s"]) < MAX_BODY_BYTES
    assert _error(_stt(client, audio["flac_61s"])) == (413, "STT001", "Exceed Sound Data length")
    assert client.get("/__admin/stats").json()["audio_seconds"] == pytest.approx(60.0, abs=0.1)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-NCP-APIGW-API-KEY-ID": DEFAULT_API_KEY_ID},
        {"X-NCP-APIGW-API-KEY": DEFAULT_API_KEY},
        {**AUTH, "X-NCP-APIGW-API-KEY": "wrong"},
        {**AUTH, "X-NCP-APIGW-API-KEY-ID": "wrong"},
    ],
)
def test_refuses_missing_or_wrong_keys(
    client: httpx.Client, audio: dict[str, bytes], headers: dict[str, str]
) -> None:
    response = client.post(STT_URL, content=audio["flac_2s"], headers={**OCTET, **headers})
    assert _error(response) == (401, "200", "Authentication Failed")


def test_an_application_without_the_csr_api_gets_quota_exceeded(
    audio: dict[str, bytes],
) -> None:
    with (
        start_fake_clova(ClovaConfig(csr_enabled=False)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        refused = client.post(STT_URL, content=audio["flac_2s"], headers={**OCTET, **AUTH})
        wrong_key = client.post(
            STT_URL, content=audio["flac_2s"], headers={**OCTET, **AUTH, "X-NCP-APIGW-API-KEY": "x"}
        )
    assert _error(refused) == (429, "400", "Quota Exceeded")
    assert _error(wrong_key) == (401, "200", "Authentication Failed")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (STT_PATH, (400, "STT004", "Empty Language")),
        (f"{STT_PATH}?lang=", (400, "STT004", "Empty Language")),
        (f"{STT_PATH}?lang=kor", (400, "STT005", "Invalid Language")),
        (f"{STT_PATH}?lang=ko-KR", (400, "STT005", "Invalid Language")),
    ],
)
def test_refuses_missing_or_unknown_language(
    client: httpx.Client, audio: dict[str, bytes], url: str, expected: tuple[int, str, str]
) -> None:
    response = client.post(url, content=audio["flac_2s"], headers={**AUTH, **OCTET})
    assert _error(response) == expected


@pytest.mark.parametrize("lang", ["Kor", "Eng", "Jpn", "Chn"])
def test_accepts_every_documented_language(
    client: httpx.Client, audio: dict[str, bytes], lang: str
) -> None:
    response = client.post(
        f"{STT_PATH}?lang={lang}", content=audio["flac_2s"], headers={**AUTH, **OCTET}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", [None, "audio/flac", "application/json"])
def test_refuses_other_content_types(
    client: httpx.Client, audio: dict[str, bytes], content_type: str | None
) -> None:
    headers = dict(AUTH) if content_type is None else {**AUTH, "Content-Type": content_type}
    response = client.post(STT_URL, content=audio["flac_2s"], headers=headers)
    assert _error(response) == (400, "STT002", "Invalid Content Type")


def test_refuses_empty_body(client: httpx.Client) -> None:
    assert _error(_stt(client, b"")) == (400, "STT003", "Empty Sound Data")


def test_refuses_bodies_over_three_megabytes(client: httpx.Client) -> None:
    response = _stt(client, os.urandom(MAX_BODY_BYTES + 1))
    assert _error(response) == (413, "STT000", "Request Entity Too Large")
    # Exactly 3 MB passes the size check and fails only because it is not audio.
    assert _error(_stt(client, os.urandom(MAX_BODY_BYTES)))[1] == "STT006"


@pytest.mark.parametrize("name", ["junk", "m4a_2s", "flac_8k"])
def test_refuses_undecodable_unsupported_or_low_rate_audio(
    client: httpx.Client, audio: dict[str, bytes], name: str
) -> None:
    body = os.urandom(4096) if name == "junk" else audio[name]
    assert _error(_stt(client, body)) == (500, "STT006", "Failed to pre-processing")


def test_checks_run_in_the_documented_order(client: httpx.Client) -> None:
    # Everything is wrong: the key check answers first, then the language, and so on.
    assert _error(client.post(STT_PATH, content=b""))[1] == "200"
    assert _error(client.post(STT_PATH, content=b"", headers=AUTH))[1] == "STT004"
    assert _error(client.post(STT_URL, content=b"", headers=AUTH))[1] == "STT002"
    assert _error(client.post(STT_URL, content=b"", headers={**AUTH, **OCTET}))[1] == "STT003"


def test_accepts_a_chunked_upload(client: httpx.Client, audio: dict[str, bytes]) -> None:
    body = audio["flac_2s"]
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    response = client.post(STT_URL, content=chunks, headers={**AUTH, **OCTET})
    assert response.status_code == 200


def test_unknown_path_is_a_gateway_not_found(client: httpx.Client) -> None:
    assert _error(client.post("/recog/v1/other", headers=AUTH)) == (404, "300", "Not Found")


def test_text_and_latency_are_configurable(client: httpx.Client, audio: dict[str, bytes]) -> None:
    config = {"text": "설정된 문장", "base_latency_s": 0.1, "per_audio_second_s": 0.1}
    assert client.post("/__admin/config", json=config).json()["text"] == "설정된 문장"
    started = time.monotonic()
    assert _stt(client, audio["flac_2s"]).json() == {"text": "설정된 문장"}
    assert time.monotonic() - started >= 0.3
    assert client.post("/__admin/config", json={"speed": 2}).status_code == 400
    assert client.post("/__admin/config", json={"base_latency_s": -1}).status_code == 400
    client.post("/__admin/reset")
    assert client.get("/__admin/config").json()["text"] == DEFAULT_TEXT
    assert _stt(client, audio["flac_2s"]).json() == {"text": DEFAULT_TEXT}


def test_call_placeholder_numbers_the_recognised_calls(
    client: httpx.Client, audio: dict[str, bytes]
) -> None:
    client.post("/__admin/config", json={"text": "{call}번째 구간 {call}번 내용"})
    texts = [_stt(client, audio["flac_2s"]).json()["text"] for _ in range(3)]
    assert texts == ["1번째 구간 1번 내용", "2번째 구간 2번 내용", "3번째 구간 3번 내용"]
    client.post("/__admin/reset")
    client.post("/__admin/config", json={"text": "{call}번째"})
    assert _stt(client, audio["flac_2s"]).json()["text"] == "1번째"  # reset restarts at 1


def test_serves_requests_concurrently(client: httpx.Client, audio: dict[str, bytes]) -> None:
    client.post("/__admin/config", json={"base_latency_s": 0.4})
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _stt(client, audio["flac_2s"]), range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert client.get("/__admin/stats").json()["max_in_flight"] == 4


def test_constructor_config_is_the_reset_point(audio: dict[str, bytes]) -> None:
    with (
        start_fake_clova(ClovaConfig(text="처음", api_key="k2")) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        key = {"X-NCP-APIGW-API-KEY": "k2"}
        assert _stt(client, audio["flac_2s"], **key).json() == {"text": "처음"}
        client.post("/__admin/config", json={"text": "나중"})
        client.post("/__admin/reset")
        assert _stt(client, audio["flac_2s"], **key).json() == {"text": "처음"}


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (429, "410", "Throttle Limited"),
        (500, "STT999", "Internal Server Error"),
        (503, "500", "Endpoint Error"),
        (504, "510", "Endpoint Timeout"),
        (418, "900", "Unexpected Error"),
    ],
)
def test_status_faults_use_the_gateway_envelope(
    client: httpx.Client, audio: dict[str, bytes], status: int, code: str, message: str
) -> None:
    client.post("/__admin/faults", json={"faults": [{"status": status}]})
    assert _error(_stt(client, audio["flac_2s"])) == (status, code, message)
    assert _stt(client, audio["flac_2s"]).status_code == 200


def test_faults_are_consumed_in_order_with_counts(
    client: httpx.Client, audio: dict[str, bytes]
) -> None:
    faults = [
        {"status": 429, "count": 2},
        {"status": 500, "body": {"error": {"errorCode": "STT998", "message": "Failed to STT"}}},
        {"status": 503, "headers": {"X-Fake": "yes"}},
    ]
    assert client.post("/__admin/faults", json={"faults": faults}).json() == {"pending": 4}
    assert len(client.get("/__admin/faults").json()["faults"]) == 4
    answers = [_stt(client, audio["flac_2s"]) for _ in range(5)]
    assert [r.status_code for r in answers] == [429, 429, 500, 503, 200]
    assert _error(answers[2]) == (500, "STT998", "Failed to STT")
    assert answers[3].headers["X-Fake"] == "yes"
    stats = client.get("/__admin/stats").json()
    assert stats["faults_applied"] == 4
    assert stats["faults_pending"] == 0
    assert stats["by_status"] == {"200": 1, "429": 2, "500": 1, "503": 1}


def test_timeout_fault_delays_then_answers(client: httpx.Client, audio: dict[str, bytes]) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "timeout", "seconds": 0.5}]})
    with pytest.raises(httpx.ReadTimeout):
        client.post(STT_URL, content=audio["flac_2s"], headers={**AUTH, **OCTET}, timeout=0.1)
    client.post("/__admin/faults", json={"faults": [{"kind": "timeout", "seconds": 0.2}]})
    started = time.monotonic()
    assert _stt(client, audio["flac_2s"]).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_malformed_fault_is_a_200_without_json(
    client: httpx.Client, audio: dict[str, bytes]
) -> None:
    client.post("/__admin/faults", json={"faults": [{"kind": "malformed"}]})
    response = _stt(client, audio["flac_2s"])
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_faults_skip_other_paths_and_admin_calls(
    client: httpx.Client, audio: dict[str, bytes]
) -> None:
    faults = [{"status": 500, "path": "/elsewhere"}, {"status": 503}]
    client.post("/__admin/faults", json={"faults": faults})
    client.get("/__admin/stats")
    assert client.post("/recog/v1/other").status_code == 404  # not an endpoint faults apply to
    assert _stt(client, audio["flac_2s"]).status_code == 503
    assert _stt(client, audio["flac_2s"]).status_code == 200
    assert client.get("/__admin/faults").json()["faults"][0]["path"] == "/elsewhere"


@pytest.mark.parametrize(
    "payload",
    [
        {"faults": []},
        {"faults": [{"kind": "empty"}]},
        {"faults": [{"kind": "timeout"}]},
        {"faults": [{"kind": "timeout", "seconds": 1, "status": 500}]},
        {"faults": [{"kind": "status"}]},
        {"faults": [{"status": 500, "count": 0}]},
        {"faults": [{"status": 500, "colour": "red"}]},
        {"fault": {"status": 500}},
    ],
)
def test_refuses_invalid_faults(client: httpx.Client, payload: object) -> None:
    response = client.post("/__admin/faults", json=payload)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert client.get("/__admin/faults").json() == {"faults": []}


def test_reset_clears_faults_and_stats(client: httpx.Client, audio: dict[str, bytes]) -> None:
    _stt(client, audio["flac_2s"])
    client.post("/__admin/faults", json={"faults": [{"status": 500, "count": 3}]})
    assert client.post("/__admin/reset").json() == {"reset": True}
    stats = client.get("/__admin/stats").json()
    assert (stats["requests"], stats["audio_seconds"], stats["faults_pending"]) == (0, 0, 0)
    assert stats["served_s"] == []
    assert _stt(client, audio["flac_2s"]).status_code == 200


def test_cli_prints_its_url_and_stops_on_sigterm(
    run_cli: CliRunner, audio: dict[str, bytes]
) -> None:
    with run_cli("local_stack.fake_clova", "--text", "명령줄") as url:
        response = httpx.post(
            f"{url}{STT_URL}", content=audio["flac_2s"], headers={**AUTH, **OCTET}
        )
        assert response.json() == {"text": "명령줄"}


def test_silence_is_recognized_as_no_text(client: httpx.Client, tmp_path: Path) -> None:
    silence = _ffmpeg(tmp_path / "silence.wav", "-i", "anullsrc=r=16000:cl=mono", "-t", "2")
    response = _stt(client, silence)
    assert response.status_code == 200
    assert response.json() == {"text": ""}

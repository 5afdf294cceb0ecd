"""The fake CLOVA Speech speaks the documented API: endpoints, refusals, sync/async, limits."""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.fake_clova_speech import (
    DEFAULT_INVOKE_PATH,
    DEFAULT_SECRET_KEY,
    DEFAULT_TEXT,
    ClovaSpeechConfig,
    FakeClovaSpeech,
    Part,
    parse_multipart,
    start_fake_clova_speech,
)
from local_stack.http_fake import FakeHTTPServer
from local_stack.sample_video import make_tone_video
from tests.local_stack.conftest import CliRunner

AUTH = {"X-CLOVASPEECH-API-KEY": DEFAULT_SECRET_KEY}
RECOGNIZER = f"{DEFAULT_INVOKE_PATH}/recognizer"
BUCKET = "fake-clova-speech-media"
AUDIO_SECONDS = 12


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("speech")
    flac = folder / "speech.flac"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"sine=frequency=300:duration={AUDIO_SECONDS}", "-ac", "1", str(flac)),
        ],
        check=True,
        capture_output=True,
    )
    return {"flac": flac, "mp4": make_tone_video(folder / "video.mp4", seconds=AUDIO_SECONDS)}


@pytest.fixture(scope="module")
def speech() -> Iterator[FakeHTTPServer[FakeClovaSpeech]]:
    with start_fake_clova_speech() as server:
        yield server


@pytest.fixture
def client(speech: FakeHTTPServer[FakeClovaSpeech]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=speech.url, timeout=10) as client:
        client.post("/__admin/reset").raise_for_status()
        yield client


@pytest.fixture
def presigned(s3_client: Any, media: dict[str, Path]) -> dict[str, str]:
    """Presigned GET URLs of the media in the local moto server (what the flow will send)."""
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
        )
    urls = {}
    for name, path in media.items():
        s3_client.upload_file(str(path), BUCKET, path.name)
        urls[name] = s3_client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": path.name}, ExpiresIn=300
        )
    urls["missing"] = s3_client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "nothing-here.mp4"}, ExpiresIn=300
    )
    return urls


# An async request polled for its result (NCP requires callback or resultToObs).
POLLED = {"resultToObs": True}


def upload(
    client: httpx.Client,
    path: Path | None,
    params: object,
    headers: dict[str, str] = AUTH,
    params_type: str = "application/json",
) -> httpx.Response:
    """A multipart upload whose params part is JSON with its content type, as NCP's sample."""
    text = params if isinstance(params, str) else json.dumps(params)
    files: dict[str, Any] = {"params": (None, text, params_type)}
    if path:
        files["media"] = (path.name, path.read_bytes(), "application/octet-stream")
    return client.post(f"{RECOGNIZER}/upload", files=files, headers=headers)


def by_url(client: httpx.Client, url: str, **params: object) -> httpx.Response:
    return client.post(f"{RECOGNIZER}/url", json={"url": url, **params}, headers=AUTH)


def poll(client: httpx.Client, token: str) -> dict[str, Any]:
    response = client.get(f"{RECOGNIZER}/{token}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["code"], body["message"]


def test_sync_upload_answers_segments_covering_the_real_duration(client, media):
    response = upload(client, media["flac"], {"language": "ko-KR", "completion": "sync"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["result"] == "COMPLETED" and result["token"]
    spans = [(segment["start"], segment["end"]) for segment in result["segments"]]
    assert spans[:2] == [(0, 5000), (5000, 10000)]
    assert len(spans) == 3 and spans[2][0] == 10000
    assert spans[2][1] == pytest.approx(AUDIO_SECONDS * 1000, abs=50)
    segment = result["segments"][0]
    assert segment["text"] == DEFAULT_TEXT and "speaker" not in segment
    assert segment["words"][0][0] == 0 and segment["words"][-1][2] == DEFAULT_TEXT.split()[-1]
    assert result["text"].startswith(DEFAULT_TEXT)
    stats = client.get("/__admin/stats").json()
    assert stats["jobs"] == {"sync:upload": 1}
    assert stats["audio_seconds"] == pytest.approx(AUDIO_SECONDS, abs=0.1)


def test_async_url_job_goes_waiting_processing_completed(client, presigned):
    client.post("/__admin/config", json={"waiting_s": 1.0, "base_latency_s": 1.0})
    started = by_url(client, presigned["mp4"], language="en-US", resultToObs=True)
    assert started.status_code == 200, started.text
    token = started.json()["token"]
    states: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = poll(client, token)
        if not states or states[-1] != answer["result"]:
            states.append(answer["result"])
        if answer["result"] == "PROCESSING":
            assert 0 <= answer["progress"] < 100
        if answer["result"] == "COMPLETED":
            break
        time.sleep(0.05)
    assert states == ["WAITING", "PROCESSING", "COMPLETED"]
    assert answer["segments"][-1]["end"] == pytest.approx(AUDIO_SECONDS * 1000, abs=100)
    assert answer["params"]["language"] == "en-US"
    assert client.get("/__admin/stats").json()["jobs"] == {"async:url": 1}


def test_completion_defaults_to_async(client, media):
    answer = upload(client, media["flac"], POLLED).json()
    assert answer["result"] == "STARTED" and answer["token"]
    assert poll(client, answer["token"])["result"] == "COMPLETED"


def test_diarization_labels_alternating_speakers(client, media):
    params = {"completion": "sync", "diarization": {"enable": True}}
    result = upload(client, media["flac"], params).json()
    labels = [segment["speaker"]["label"] for segment in result["segments"]]
    assert labels == ["1", "2", "1"]
    assert [s["label"] for s in result["speakers"]] == ["1", "2"]


@pytest.mark.parametrize(
    "headers", [{}, {"X-CLOVASPEECH-API-KEY": "wrong"}, {"X-NCP-APIGW-API-KEY": "x"}]
)
def test_refuses_a_missing_or_wrong_secret(client, media, headers):
    response = upload(client, media["flac"], {"completion": "sync"}, headers=headers)
    assert error(response) == (401, "401", "Invalid secret")
    assert error(client.get(f"{RECOGNIZER}/abc", headers=headers))[0] == 401


@pytest.mark.parametrize(
    "params",
    [
        {"language": "ko"},
        {"language": "Kor"},
        {"completion": "later"},
        {"wordAlignment": "true"},
        {"diarization": True},
        {"diarization": {"enable": "yes"}},
        {"boostings": [{"word": "a"}]},
        {"callback": "not-a-url"},
    ],
)
def test_refuses_invalid_params(client, media, params):
    assert error(upload(client, media["flac"], params)) == (
        400,
        "400",
        "Invalid request parameters",
    )


def test_refuses_malformed_requests(client, media, presigned):
    invalid = (400, "400", "Invalid request parameters")
    assert error(upload(client, None, {})) == invalid  # no media part
    assert error(upload(client, media["flac"], "{not json")) == invalid
    no_params = client.post(f"{RECOGNIZER}/upload", files={"media": ("a.flac", b"x")}, headers=AUTH)
    assert error(no_params) == invalid
    assert error(client.post(f"{RECOGNIZER}/url", json={}, headers=AUTH)) == invalid
    assert error(by_url(client, "ftp://host/file.mp4")) == invalid
    as_form = client.post(f"{RECOGNIZER}/url", data={"url": presigned["mp4"]}, headers=AUTH)
    assert error(as_form) == invalid
    as_json = client.post(f"{RECOGNIZER}/upload", json={"params": "{}"}, headers=AUTH)
    assert error(as_json) == invalid
    assert error(client.get(f"{RECOGNIZER}/no-such-token", headers=AUTH)) == invalid


def test_async_requests_must_name_a_callback_or_result_to_obs(client, media, presigned):
    invalid = (400, "400", "Invalid request parameters")
    assert error(upload(client, media["flac"], {})) == invalid
    assert error(upload(client, media["flac"], {"completion": "async"})) == invalid
    assert error(upload(client, media["flac"], {"resultToObs": False})) == invalid
    assert error(by_url(client, presigned["mp4"])) == invalid
    assert (
        upload(client, media["flac"], {"callback": "https://example.com/done"}).status_code == 200
    )
    assert by_url(client, presigned["mp4"], resultToObs=True).status_code == 200
    # A sync request needs neither.
    assert upload(client, media["flac"], {"completion": "sync"}).status_code == 200


@pytest.mark.parametrize("params_type", ["text/plain", "application/octet-stream", None])
def test_an_upload_whose_params_part_is_not_json_is_refused(client, media, params_type):
    files: dict[str, Any] = {"media": ("a.flac", media["flac"].read_bytes())}
    text = json.dumps({"completion": "sync"})
    files["params"] = (None, text, params_type) if params_type else (None, text)
    response = client.post(f"{RECOGNIZER}/upload", files=files, headers=AUTH)
    assert error(response) == (400, "400", "Invalid request parameters")


def test_containers_ncp_does_not_list_fail_preprocessing(client, tmp_path):
    made = {}
    for name, codec in (("clip.webm", "libopus"), ("clip.mkv", "libopus"), ("clip.ts", "aac")):
        made[name] = tmp_path / name
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
                *("-i", "sine=frequency=300:duration=2", "-c:a", codec, str(made[name])),
            ],
            check=True,
            capture_output=True,
        )
    refused = (500, "STT006", "Failed to pre-processing")
    assert error(upload(client, made["clip.webm"], {"completion": "sync"})) == refused
    assert error(upload(client, made["clip.ts"], {"completion": "sync"})) == refused
    assert upload(client, made["clip.mkv"], {"completion": "sync"}).status_code == 200


def test_unknown_paths_are_not_found(client):
    assert error(client.post("/external/v1/1/other/recognizer/url", headers=AUTH))[0] == 404
    assert error(client.post(f"{RECOGNIZER}/stream", headers=AUTH))[0] == 404
    assert error(client.get(f"{RECOGNIZER}/a/b", headers=AUTH))[0] == 404


def test_url_that_cannot_be_fetched_is_an_invalid_parameter(client, presigned):
    assert error(by_url(client, presigned["missing"], resultToObs=True))[0:2] == (400, "400")
    assert error(by_url(client, "http://127.0.0.1:9/nothing.mp4", resultToObs=True))[0:2] == (
        400,
        "400",
    )


def test_undecodable_media_fails_preprocessing(client, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not media" * 500)
    response = upload(client, junk, {"completion": "sync"})
    assert error(response) == (500, "STT006", "Failed to pre-processing")


def test_length_limits_differ_for_sync_and_async(client, media):
    client.post("/__admin/config", json={"max_sync_audio_s": 10, "max_async_audio_s": 11})
    too_long = (413, "STT001", "Exceed Sound Data length")
    assert error(upload(client, media["flac"], {"completion": "sync"})) == too_long
    assert error(upload(client, media["flac"], {"completion": "async", **POLLED})) == too_long
    client.post("/__admin/config", json={"max_async_audio_s": 13})
    assert upload(client, media["flac"], {"completion": "async", **POLLED}).status_code == 200


def test_size_limit_applies_to_uploads_and_urls(client, media, presigned):
    client.post("/__admin/config", json={"max_media_bytes": 1000})
    too_large = (413, "STT000", "Request Entity Too Large")
    assert error(upload(client, media["flac"], {"completion": "sync"})) == too_large
    assert error(by_url(client, presigned["mp4"], completion="sync")) == too_large


def test_object_storage_reads_data_keys_under_the_configured_base(client, media):
    key_only = {"dataKey": media["mp4"].name, "completion": "sync"}
    refused = client.post(f"{RECOGNIZER}/object-storage", json=key_only, headers=AUTH)
    assert error(refused)[0] == 400
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(media["mp4"].parent))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as storage:
        threading.Thread(target=storage.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{storage.server_address[1]}"
            client.post("/__admin/config", json={"object_storage_url": base})
            answer = client.post(f"{RECOGNIZER}/object-storage", json=key_only, headers=AUTH)
        finally:
            storage.shutdown()
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "COMPLETED"


def test_latency_model_applies_to_sync_and_async(client, media):
    client.post("/__admin/config", json={"base_latency_s": 1.0, "per_audio_second_s": 0.05})
    started = time.monotonic()
    assert upload(client, media["flac"], {"completion": "sync"}).status_code == 200
    assert time.monotonic() - started >= 1.0 + 0.05 * AUDIO_SECONDS - 0.05
    token = upload(client, media["flac"], POLLED).json()["token"]
    assert poll(client, token)["result"] == "PROCESSING"
    assert client.get("/__admin/stats").json()["jobs_running"] == 1


@pytest.mark.parametrize(("kind", "state"), [("job-failed", "FAILED"), ("job-timeout", "TIMEOUT")])
def test_job_faults_end_the_next_job(client, media, kind, state):
    client.post("/__admin/faults", json={"faults": [{"kind": kind}]})
    token = upload(client, media["flac"], POLLED).json()["token"]
    assert poll(client, token)["result"] == state
    assert upload(client, media["flac"], {"completion": "sync"}).json()["result"] == "COMPLETED"


def test_status_faults_use_the_service_error_body(client, media):
    client.post("/__admin/faults", json={"faults": [{"status": 503}, {"status": 500}]})
    assert error(upload(client, media["flac"], POLLED))[0:2] == (503, "503")
    assert error(upload(client, media["flac"], POLLED))[0:2] == (500, "STT999")


def test_multipart_parser_keeps_binary_content_exactly():
    payload = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    request = httpx.Request(
        "POST", "http://x/", files={"media": ("m.bin", payload)}, data={"params": "{}"}
    )
    body = request.read()
    parts = parse_multipart(request.headers["Content-Type"], body)
    assert parts["media"] == Part("m.bin", "application/octet-stream", payload)
    assert parts["params"] == Part(None, None, b"{}")


def test_reset_restores_the_start_config_and_forgets_jobs(media):
    config = ClovaSpeechConfig(secret_key="s2", text="처음")
    with (
        start_fake_clova_speech(config) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        headers = {"X-CLOVASPEECH-API-KEY": "s2"}
        token = upload(client, media["flac"], POLLED, headers=headers).json()["token"]
        client.post("/__admin/config", json={"text": "나중"})
        client.post("/__admin/reset")
        assert client.get(f"{RECOGNIZER}/{token}", headers=headers).status_code == 400
        result = upload(client, media["flac"], {"completion": "sync"}, headers=headers).json()
        assert result["segments"][0]["text"] == "처음"


def test_cli_prints_its_url_and_stops_on_sigterm(run_cli: CliRunner, media):
    with run_cli(
        "local_stack.fake_clova_speech", "--secret-key=k", "--invoke-path=/external/v1/7/x"
    ) as url:
        response = httpx.post(
            f"{url}/external/v1/7/x/recognizer/upload",
            files={
                "media": ("a.flac", media["flac"].read_bytes()),
                "params": (None, json.dumps({"completion": "sync"}), "application/json"),
            },
            headers={"X-CLOVASPEECH-API-KEY": "k"},
            timeout=10,
        )
        assert response.json()["result"] == "COMPLETED"

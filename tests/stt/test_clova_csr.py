"""The CLOVA CSR client against the fake server that follows the documented API."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.fake_clova import ClovaConfig, FakeClova, start_fake_clova
from local_stack.http_fake import FakeHTTPServer, Fault
from local_stack.sample_video import make_tone_video
from video_processor import chunking
from video_processor.errors import SpeechToTextError, SpeechToTextTimeout
from video_processor.models import AudioChunk
from video_processor.stt.clova_csr import ClovaCsrSpeechToText

KEY_ID, KEY = "key-id", "key-secret"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHTTPServer[FakeClova]]:
    with start_fake_clova(ClovaConfig(api_key_id=KEY_ID, api_key=KEY, text="안녕하세요")) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeHTTPServer[FakeClova]) -> None:
    fake.service.faults.clear()
    fake.service.stats.reset()


@pytest.fixture(scope="module")
def chunk_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AudioChunk]:
    folder = tmp_path_factory.mktemp("csr")
    video = make_tone_video(folder / "v.mp4", seconds=3)
    [piece] = chunking.extract_audio_chunks(video, folder, chain="", chunk_seconds=55, timeout_s=60)
    return piece.path, AudioChunk(
        index=2,
        key="k",
        start_s=110.0,
        duration_s=piece.duration_s,
        size_bytes=piece.path.stat().st_size,
    )


def engine(
    fake: FakeHTTPServer[FakeClova], key: str = KEY, timeout_s: float = 5
) -> ClovaCsrSpeechToText:
    return ClovaCsrSpeechToText(
        url=f"{fake.url}/recog/v1/stt", api_key_id=KEY_ID, api_key=key, timeout_s=timeout_s
    )


def test_chunk_becomes_one_segment_at_its_absolute_time(fake, chunk_file):
    path, chunk = chunk_file
    [segment] = engine(fake).transcribe_chunk(path, chunk)
    assert segment.text == "안녕하세요"
    assert segment.start_s == 110.0
    assert segment.end_s == pytest.approx(113.0, abs=0.1)


def test_wrong_key_is_a_permanent_bad_response(fake, chunk_file):
    with pytest.raises(SpeechToTextError, match="401") as caught:
        engine(fake, key="wrong").transcribe_chunk(*chunk_file)
    assert caught.value.code == "STT_BAD_RESPONSE" and not caught.value.retryable


@pytest.mark.parametrize(
    ("fault", "error_type", "retryable"),
    [
        (Fault(status=429), SpeechToTextError, True),
        (Fault(status=500), SpeechToTextError, True),
        (Fault(status=504), SpeechToTextTimeout, True),
        (Fault(status=400), SpeechToTextError, False),
        (Fault(status=413), SpeechToTextError, False),
        (Fault(status=404), SpeechToTextError, False),
        (Fault(status=408), SpeechToTextError, True),
        (Fault(status=409), SpeechToTextError, True),
        (Fault(status=425), SpeechToTextError, True),
        (Fault(kind="malformed"), SpeechToTextError, True),
        (Fault(kind="timeout", seconds=3), SpeechToTextTimeout, True),
    ],
    ids=["429", "500", "504", "400", "413", "404", "408", "409", "425", "malformed", "timeout"],
)
def test_error_replies_map_to_codes_and_retryability(
    fake, chunk_file, fault, error_type, retryable
):
    fake.service.faults.extend([fault])
    with pytest.raises(error_type) as caught:
        engine(fake, timeout_s=1).transcribe_chunk(*chunk_file)
    assert type(caught.value) is error_type
    assert caught.value.retryable is retryable


def test_an_application_without_the_csr_api_fails_at_once_saying_what_to_enable(fake, chunk_file):
    fake.service.update_config({"csr_enabled": False})
    try:
        with pytest.raises(SpeechToTextError, match="429: 400 Quota Exceeded") as caught:
            engine(fake).transcribe_chunk(*chunk_file)
    finally:
        fake.service.update_config({"csr_enabled": True})
    assert not caught.value.retryable
    assert "enable the API for this application" in caught.value.message


@pytest.mark.parametrize(
    ("body", "status", "hint"),
    [
        ({"error": {"errorCode": "200", "message": "Authentication Failed"}}, 401, "CLOVA_API_KEY"),
        ({"error": {"errorCode": "210", "message": "Permission Denied"}}, 401, "may not call"),
        ({"error": {"errorCode": "210", "message": "Permission Denied"}}, 403, "may not call"),
    ],
    ids=["401-auth", "401-permission", "403"],
)
def test_key_and_permission_refusals_are_permanent_and_say_what_to_check(
    fake, chunk_file, body, status, hint
):
    fake.service.faults.extend([Fault(status=status, body=body)])
    with pytest.raises(SpeechToTextError) as caught:
        engine(fake).transcribe_chunk(*chunk_file)
    assert not caught.value.retryable
    assert hint in caught.value.message


def test_chunk_over_the_csr_limits_is_refused_before_sending(fake, chunk_file):
    path, chunk = chunk_file
    too_long = chunk.model_copy(update={"duration_s": 61.0})
    with pytest.raises(SpeechToTextError, match="exceeds CLOVA CSR limits"):
        engine(fake).transcribe_chunk(path, too_long)
    assert fake.service.stats.snapshot()["requests"] == 0


def test_unsupported_language_is_refused():
    with pytest.raises(SpeechToTextError, match="does not support"):
        ClovaCsrSpeechToText(url="http://x", api_key_id="a", api_key="b", language="fr")

"""The CLOVA Speech long-form client against the fake that follows the documented API."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blocks import ClovaSpeechCredentials
from local_stack.fake_clova_speech import (
    DEFAULT_INVOKE_PATH,
    ClovaSpeechConfig,
    FakeClovaSpeech,
    start_fake_clova_speech,
)
from local_stack.http_fake import FakeHTTPServer, Fault
from local_stack.sample_video import make_tone_video
from video_processor.config import ClovaSpeechOptions
from video_processor.errors import ConfigurationError, SpeechToTextError, SpeechToTextTimeout
from video_processor.stt.base import MediaSource
from video_processor.stt.clova_speech import (
    ClovaSpeechLongForm,
    clova_language,
    parse_segments,
    speaker_of,
)

SECRET = "speech-secret"
TEXT = "긴 영상 문장"
VIDEO_SECONDS = 11
BUCKET = "clova-speech-client"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHTTPServer[FakeClovaSpeech]]:
    with start_fake_clova_speech(ClovaSpeechConfig(secret_key=SECRET, text=TEXT)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeHTTPServer[FakeClovaSpeech]) -> None:
    httpx.post(f"{fake.url}/__admin/reset").raise_for_status()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tone_video(tmp_path_factory.mktemp("speech") / "v.mp4", seconds=VIDEO_SECONDS)


@pytest.fixture
def presigned_url(s3_client: Any, video: Path) -> str:
    with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
        s3_client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
        )
    s3_client.upload_file(str(video), BUCKET, "videos/u/j.mp4")
    return str(
        s3_client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "videos/u/j.mp4"}, ExpiresIn=300
        )
    )


def engine(
    fake: FakeHTTPServer[FakeClovaSpeech],
    *,
    secret_key: str = SECRET,
    sleep: Callable[[float], None] = time.sleep,
    **options: Any,
) -> ClovaSpeechLongForm:
    chosen = {
        "poll_interval_seconds": 0.02,
        "poll_max_interval_seconds": 0.05,
        "deadline_seconds": 60,
        "timeout_seconds": 5,
        **options,
    }
    return ClovaSpeechLongForm(
        invoke_url=f"{fake.url}{DEFAULT_INVOKE_PATH}",
        secret_key=secret_key,
        options=ClovaSpeechOptions(**chosen),
        sleep=sleep,
    )


def configure(fake: FakeHTTPServer[FakeClovaSpeech], **changes: Any) -> None:
    fake.service.update_config(changes)


def jobs(fake: FakeHTTPServer[FakeClovaSpeech]) -> dict[str, int]:
    return dict(httpx.get(f"{fake.url}/__admin/stats").json()["jobs"])


def test_short_media_is_uploaded_and_recognised_synchronously(fake, video):
    source = MediaSource(path=video, duration_s=VIDEO_SECONDS)
    transcript = engine(fake, send_url=False).transcribe_media(source)
    assert transcript.engine == "clova-speech" and transcript.language == "ko"
    assert [(s.start_s, s.end_s) for s in transcript.segments][:2] == [(0.0, 5.0), (5.0, 10.0)]
    assert transcript.segments[-1].end_s == pytest.approx(VIDEO_SECONDS, abs=0.1)
    assert all(s.text == TEXT and s.speaker is None for s in transcript.segments)
    assert jobs(fake) == {"sync:upload": 1}


def test_long_media_goes_by_presigned_url_and_is_polled(fake, video, presigned_url):
    configure(fake, waiting_s=0.1, base_latency_s=0.2)
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        time.sleep(seconds)

    source = MediaSource(url=presigned_url, path=video, duration_s=VIDEO_SECONDS)
    transcript = engine(fake, sync_max_audio_seconds=10, sleep=sleep).transcribe_media(source)
    assert transcript.segments[-1].end_s == pytest.approx(VIDEO_SECONDS, abs=0.1)
    assert jobs(fake) == {"async:url": 1}
    assert len(polls) >= 3, "WAITING and PROCESSING were polled through"
    assert polls[1] > polls[0] and max(polls) <= 0.05


def test_unknown_duration_is_async_and_upload_when_url_sending_is_off(fake, video):
    source = MediaSource(url="http://unused.invalid/x.mp4", path=video)
    engine(fake, send_url=False).transcribe_media(source)
    assert jobs(fake) == {"async:upload": 1}


def test_url_only_source_with_url_sending_off_is_a_configuration_error(fake):
    source = MediaSource(url="http://127.0.0.1:9/x.mp4", duration_s=5)
    with pytest.raises(ConfigurationError):
        engine(fake, send_url=False).transcribe_media(source)


def test_media_source_needs_a_url_or_a_path():
    with pytest.raises(ValueError):
        MediaSource(duration_s=3)


def test_diarization_maps_speakers(fake, video):
    source = MediaSource(path=video, duration_s=VIDEO_SECONDS)
    transcript = engine(fake, send_url=False, diarization=True).transcribe_media(source)
    assert [s.speaker for s in transcript.segments] == ["A", "B", "A"]


def test_params_follow_the_contract(fake):
    client = ClovaSpeechLongForm(
        invoke_url=fake.url,
        secret_key=SECRET,
        language="en",
        options=ClovaSpeechOptions(diarization=True),
    )
    assert client.params("sync") == {
        "language": "en-US",
        "completion": "sync",
        "wordAlignment": True,
        "fullText": True,
        "diarization": {"enable": True},
    }
    # Async names its result target, as NCP requires: the result is kept and polled for.
    assert client.params("async") == {
        **client.params("sync"),
        "completion": "async",
        "resultToObs": True,
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ko", "ko-KR"), ("en", "en-US"), ("ja", "ja"), ("zh", "zh-cn"), ("enko", "enko")],
)
def test_language_mapping(language, expected):
    assert clova_language(language) == expected


def test_unsupported_language_is_refused():
    with pytest.raises(SpeechToTextError, match="fr"):
        clova_language("fr")


def test_wrong_secret_is_a_permanent_bad_response(fake, video):
    with pytest.raises(SpeechToTextError, match="401") as caught:
        engine(fake, secret_key="wrong", send_url=False).transcribe_media(
            MediaSource(path=video, duration_s=VIDEO_SECONDS)
        )
    assert caught.value.code == "STT_BAD_RESPONSE" and not caught.value.retryable
    assert "check CLOVA_SPEECH_SECRET_KEY" in caught.value.message


def test_media_the_service_cannot_preprocess_is_not_retried(fake, tmp_path):
    webm = tmp_path / "clip.webm"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=2"),
            *("-c:a", "libopus", str(webm)),
        ],
        check=True,
        capture_output=True,
    )
    with pytest.raises(SpeechToTextError, match="STT006") as caught:
        engine(fake, send_url=False).transcribe_media(MediaSource(path=webm, duration_s=2))
    assert not caught.value.retryable
    assert jobs(fake) == {}


@pytest.mark.parametrize("extension", ["webm", "3gp", "ts"])
def test_a_container_the_service_does_not_list_is_refused_before_sending(fake, video, extension):
    source = MediaSource(path=video, duration_s=VIDEO_SECONDS, extension=extension)
    with pytest.raises(SpeechToTextError, match=f"does not take .{extension} media") as caught:
        engine(fake, send_url=False).transcribe_media(source)
    assert not caught.value.retryable
    assert httpx.get(f"{fake.url}/__admin/stats").json()["requests"] == 0


@pytest.mark.parametrize(
    ("fault", "error_type", "retryable"),
    [
        (Fault(status=429), SpeechToTextError, True),
        (Fault(status=500), SpeechToTextError, True),
        (Fault(status=503), SpeechToTextError, True),
        (Fault(status=504), SpeechToTextTimeout, True),
        (Fault(status=400), SpeechToTextError, False),
        (Fault(status=413), SpeechToTextError, False),
        (Fault(status=404), SpeechToTextError, False),
        (Fault(status=408), SpeechToTextError, True),
        (Fault(status=409), SpeechToTextError, True),
        (Fault(status=425), SpeechToTextError, True),
        (Fault(kind="malformed"), SpeechToTextError, True),
        (Fault(kind="timeout", seconds=2), SpeechToTextTimeout, True),
        (Fault(kind="job-failed"), SpeechToTextError, False),
        (Fault(kind="job-timeout"), SpeechToTextTimeout, True),
    ],
    ids=lambda value: value.kind + str(value.status or "") if isinstance(value, Fault) else None,
)
def test_errors_map_to_codes_and_retryability(fake, video, fault, error_type, retryable):
    fake.service.faults.extend([fault])
    # A short timeout only where the fault is a delay: ffprobe under load can take 0.5 s.
    client = engine(fake, send_url=False, timeout_seconds=0.5 if fault.kind == "timeout" else 10)
    with pytest.raises(error_type) as caught:
        client.transcribe_media(MediaSource(path=video))
    assert type(caught.value) is error_type
    assert caught.value.retryable is retryable


def test_transient_poll_errors_do_not_lose_the_job(fake, video):
    configure(fake, base_latency_s=0.1)
    injected: list[bool] = []

    def sleep(seconds: float) -> None:
        if not injected:  # the job is submitted: the next polls fail, then recover
            fake.service.faults.extend([Fault(status=503, count=2)])
            injected.append(True)
        time.sleep(seconds)

    transcript = engine(fake, send_url=False, sleep=sleep).transcribe_media(MediaSource(path=video))
    assert transcript.segments
    assert jobs(fake) == {"async:upload": 1}, "the job was not submitted twice"


def test_too_many_poll_errors_give_up(fake, video):
    def sleep(seconds: float) -> None:
        fake.service.faults.extend([Fault(status=503)])
        time.sleep(seconds)

    client = engine(fake, send_url=False, sleep=sleep, max_poll_errors=2)
    with pytest.raises(SpeechToTextError, match="503") as caught:
        client.transcribe_media(MediaSource(path=video))
    assert caught.value.retryable


def test_deadline_bounds_an_async_job(fake, video):
    configure(fake, base_latency_s=30)
    started = time.monotonic()
    with pytest.raises(SpeechToTextTimeout, match="within") as caught:
        engine(fake, send_url=False, deadline_seconds=0.3).transcribe_media(MediaSource(path=video))
    assert caught.value.retryable
    assert time.monotonic() - started < 10, "the deadline, not the 30 s job, ended it"


def test_unreachable_service_is_retryable(video):
    client = ClovaSpeechLongForm(
        invoke_url="http://127.0.0.1:9/x",
        secret_key="s",
        options=ClovaSpeechOptions(timeout_seconds=1),
    )
    with pytest.raises(SpeechToTextError) as caught:
        client.transcribe_media(MediaSource(path=video))
    assert caught.value.retryable


@pytest.mark.parametrize(
    "source",
    [
        MediaSource(url="http://x.invalid/v.mp4", duration_s=6 * 3600 + 1),
        MediaSource(url="http://x.invalid/v.mp4", size_bytes=2 * 1024**3 + 1),
    ],
    ids=["over-6h", "over-2GB"],
)
def test_limits_are_checked_before_any_request(fake, source):
    with pytest.raises(SpeechToTextError, match="at most") as caught:
        engine(fake).transcribe_media(source)
    assert not caught.value.retryable
    assert httpx.get(f"{fake.url}/__admin/stats").json()["requests"] == 0


def test_segments_are_mapped_sorted_and_empty_ones_dropped():
    reply = {
        "segments": [
            {"start": 5200, "end": 7000, "text": " 둘 ", "speaker": {"label": "2"}},
            {"start": 0, "end": 5200, "text": "하나", "diarization": {"label": "1"}},
            {"start": 7000, "end": 7100, "text": "  "},
        ]
    }
    segments = parse_segments(reply)
    assert [(s.start_s, s.end_s, s.text, s.speaker) for s in segments] == [
        (0.0, 5.2, "하나", "1"),
        (5.2, 7.0, "둘", "2"),
    ]


@pytest.mark.parametrize(
    "reply",
    [{}, {"segments": None}, {"segments": [{"text": "x", "start": "a", "end": 1}]}],
)
def test_malformed_results_are_bad_responses(reply):
    with pytest.raises(SpeechToTextError):
        parse_segments(reply)


def test_speaker_prefers_name_then_label():
    assert speaker_of({"speaker": {"label": "1", "name": "A"}}) == "A"
    assert speaker_of({"speaker": {"label": "1", "name": ""}}) == "1"
    assert speaker_of({"diarization": {"label": "2"}}) == "2"
    assert speaker_of({"speaker": None}) is None


def test_block_builds_the_engine():
    block = ClovaSpeechCredentials(
        invoke_url="https://clovaspeech-gw.ncloud.com/external/v1/1/k",
        secret_key="very-secret",
        diarization=True,
        sync_max_audio_seconds=60,
    )
    assert "very-secret" not in repr(block)
    built = block.get_engine(language="ko")
    assert built.name == "clova-speech" and built.clova_language == "ko-KR"
    assert built.options.diarization and built.options.sync_max_audio_seconds == 60
    assert built.options.deadline_seconds == ClovaSpeechOptions().deadline_seconds


def test_missing_local_file_is_a_bad_response_not_a_crash(fake, tmp_path):
    with pytest.raises(SpeechToTextError, match="cannot read") as caught:
        engine(fake, send_url=False).transcribe_media(MediaSource(path=tmp_path / "gone.mp4"))
    assert not caught.value.retryable

import typing
from pathlib import Path

import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types import Model
from pydantic_settings import BaseSettings

from video_processor.config import (
    DEFAULT_CLAUDE_MODEL,
    AudioProfile,
    BlockNames,
    ClovaSpeechOptions,
    ClovaSpeechSettings,
    RateLimit,
    Settings,
    load_settings,
    rate_limits,
)
from video_processor.errors import ConfigurationError


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    settings = load_settings()
    assert settings.sqs_wait_time_seconds == 10
    assert settings.sqs_visibility_timeout_seconds == 90
    assert settings.audio_profile is AudioProfile.DENOISE
    assert settings.claude_model != "claude-3-7-sonnet-latest"


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CLAUDE_MAX_TOKENS=1234\nBLOCK_CLAUDE=claude-prod\n")
    monkeypatch.setenv("SQS_WAIT_TIME_SECONDS", "20")
    settings = load_settings()
    assert settings.claude_max_tokens == 1234
    assert settings.sqs_wait_time_seconds == 20
    assert settings.blocks.claude == "claude-prod"


def test_clova_speech_variables_keep_their_names_and_the_options_their_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CLOVA_SPEECH_DEADLINE_SECONDS=900\n")
    monkeypatch.setenv("CLOVA_SPEECH_SEND_URL", "false")
    monkeypatch.setenv(
        "CLOVA_SPEECH_INVOKE_URL", "https://clovaspeech-gw.ncloud.com/external/v1/1/k"
    )
    speech = load_settings().clova_speech
    assert speech.invoke_url == "https://clovaspeech-gw.ncloud.com/external/v1/1/k"
    assert (speech.send_url, speech.deadline_seconds) == (False, 900)
    assert speech.model_dump(
        exclude={"invoke_url", "secret_key", "send_url", "deadline_seconds"}
    ) == (ClovaSpeechOptions().model_dump(exclude={"send_url", "deadline_seconds"}))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SQS_WAIT_TIME_SECONDS", "21"),
        ("SQS_VISIBILITY_TIMEOUT_SECONDS", "-1"),
        ("APP_ENV", "staging"),
        ("STT_ENGINE", "whisper-xl"),
        ("AUDIO_CHUNK_SECONDS", "120"),
        ("CLOVA_SPEECH_POLL_INTERVAL_SECONDS", "0"),
        ("CLOVA_SPEECH_SYNC_MAX_AUDIO_SECONDS", "7201"),
    ],
)
def test_invalid_value_fails_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path, variable: str, value: str
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_env_example_names_every_variable_and_loads(monkeypatch: pytest.MonkeyPatch, tmp_path):
    example = Path(__file__).resolve().parent.parent / ".env.example"
    lines = example.read_text().splitlines()
    names = {line.split("=")[0] for line in lines if "=" in line and not line.startswith("#")}
    groups: dict[str, type[BaseSettings]] = {
        "blocks": BlockNames,
        "clova_speech": ClovaSpeechSettings,
    }
    expected = {name.upper() for name in Settings.model_fields if name not in groups}
    for group in groups.values():
        prefix = group.model_config["env_prefix"]
        expected |= {f"{prefix}{name}".upper() for name in group.model_fields}
    assert expected - names == set()
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(example.read_text())
    settings = load_settings()
    assert settings.aws_access_key_id is None  # empty means unset
    assert settings.whisper_model_dir is None


def test_rate_limits_exist_only_when_configured(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert rate_limits(load_settings()) == {}
    monkeypatch.setenv("CLOVA_CSR_REQUESTS_PER_SECOND", "2.5")
    monkeypatch.setenv("CLAUDE_REQUESTS_PER_MINUTE", "50")
    assert rate_limits(load_settings()) == {
        "rate-stt-clova-csr": RateLimit(slots=3, per_second=2.5),
        "rate-llm-claude": RateLimit(slots=50, per_second=50 / 60),
    }


def test_the_default_model_is_the_newest_current_sonnet_of_the_pinned_sdk():
    listed = typing.get_args(typing.get_args(Model)[0])  # newest first, as the SDK lists them
    sonnets = [m for m in listed if "sonnet" in m and m not in DEPRECATED_MODELS]
    assert Settings().claude_model == DEFAULT_CLAUDE_MODEL == sonnets[0]


def test_audio_profile_seed_still_selects_the_denoise_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDIO_PROFILE", "seed")
    assert load_settings().audio_profile is AudioProfile.DENOISE
    monkeypatch.setenv("AUDIO_PROFILE", "loud")
    with pytest.raises(ConfigurationError, match="AUDIO_PROFILE"):
        load_settings()

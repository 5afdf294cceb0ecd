import sys

import pytest

from blocks import ClovaCsrCredentials, ClovaSpeechCredentials
from flows import runtime
from flows.engines import STT_ENGINES, build_stt_engine
from video_processor.config import LlmEngineName, Settings, SttEngineName
from video_processor.errors import ConfigurationError
from video_processor.models import RunPlan
from video_processor.stt.base import WholeMedia


def test_the_local_engine_without_faster_whisper_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `cloud` image has no faster-whisper: choosing the local engine fails cleanly."""
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "video_processor.stt.local_whisper", raising=False)
    with pytest.raises(ConfigurationError, match="local STT engine is not installed"):
        build_stt_engine(SttEngineName.LOCAL, "ko", Settings())


def test_the_engine_table_says_which_engines_take_the_whole_upload():
    built = {
        SttEngineName.CLOVA_CSR: ClovaCsrCredentials(api_key_id="i", api_key="k"),
        SttEngineName.CLOVA_SPEECH: ClovaSpeechCredentials(invoke_url="http://x", secret_key="k"),
    }
    for name, block in built.items():
        spec = STT_ENGINES[name]
        assert spec.block_type is type(block)
        assert isinstance(block.get_engine("ko"), WholeMedia) is spec.whole_media
    assert not STT_ENGINES[SttEngineName.LOCAL].whole_media
    assert STT_ENGINES[SttEngineName.LOCAL].block_type is None
    assert list(STT_ENGINES)[:2] == [SttEngineName.CLOVA_CSR, SttEngineName.CLOVA_SPEECH]


@pytest.mark.parametrize(
    ("engine", "chunked"), [("clova-speech", False), ("clova-csr", True), ("local", True)]
)
def test_the_run_plan_tells_the_audio_stage_whether_to_cut_chunks(
    monkeypatch: pytest.MonkeyPatch, engine: str, chunked: bool
) -> None:
    configured = Settings(stt_engine=SttEngineName(engine), llm_engine=LlmEngineName.LOCAL)
    monkeypatch.setattr(runtime, "settings", lambda: configured)
    plan = runtime.plan_run()
    assert plan.stt_engine == engine and plan.audio.chunked is chunked
    assert RunPlan.model_validate_json(plan.model_dump_json()) == plan


class Client:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_client_is_built_again_only_when_its_block_changed_and_the_old_one_is_closed():
    key = ("test-client", object())
    first = runtime._reused(key, {"url": "a"}, Client)
    assert runtime._reused(key, {"url": "a"}, Client) is first
    second = runtime._reused(key, {"url": "b"}, Client)
    assert second is not first and first.closed and not second.closed

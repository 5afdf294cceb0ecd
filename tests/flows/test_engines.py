import sys

import pytest

from flows.engines import build_stt_engine
from video_processor.config import Settings, SttEngineName
from video_processor.errors import ConfigurationError


def test_the_local_engine_without_faster_whisper_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `cloud` image has no faster-whisper: choosing the local engine fails cleanly."""
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "video_processor.stt.local_whisper", raising=False)
    with pytest.raises(ConfigurationError, match="local STT engine is not installed"):
        build_stt_engine(SttEngineName.LOCAL, "ko", Settings())

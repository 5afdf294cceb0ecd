"""CLOVA Speech (long-form recognition) credentials and options."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from video_processor.stt.clova_speech import MAX_SYNC_AUDIO_SECONDS, ClovaSpeechLongForm


class ClovaSpeechCredentials(Block):
    """Invoke URL, secret key and options of a Naver CLOVA Speech (long-form) domain.

    The engine transcribes a whole video in one job (see ``video_processor.stt.clova_speech``).

    Example:
        ```python
        from blocks import ClovaSpeechCredentials
        from video_processor.stt.clova_speech import MediaSource

        engine = ClovaSpeechCredentials.load("clova-speech").get_engine(language="ko")
        transcript = engine.transcribe_media(MediaSource(url=presigned_url, duration_s=1800))
        ```
    """

    _block_type_name = "CLOVA Speech Credentials"
    _block_type_slug = "clova-speech-credentials"
    _documentation_url = HttpUrl(
        "https://api.ncloud-docs.com/docs/en/ai-application-service-clovaspeech"
    )

    invoke_url: str = Field(
        title="Invoke URL",
        description="The domain's invoke URL, e.g. "
        "https://clovaspeech-gw.ncloud.com/external/v1/{id}/{key}.",
    )
    secret_key: SecretStr = Field(title="Secret key", description="X-CLOVASPEECH-API-KEY.")
    send_url: bool = Field(
        default=True,
        title="Send presigned URLs",
        description="Send a presigned S3 URL (recognizer/url) instead of uploading the file.",
    )
    diarization: bool = Field(
        default=False, title="Diarization", description="Label segments with speakers."
    )
    sync_max_audio_seconds: float = Field(
        default=300.0,
        ge=0,
        le=MAX_SYNC_AUDIO_SECONDS,
        title="Sync up to (s)",
        description="Media up to this length is recognised synchronously; longer: async.",
    )
    poll_interval_seconds: float = Field(
        default=2.0, gt=0, title="Poll interval (s)", description="First async poll delay."
    )
    poll_max_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        title="Max poll interval (s)",
        description="The poll delay grows up to this.",
    )
    deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        title="Deadline (s)",
        description="An async job not done by then is STT_TIMEOUT.",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, title="Timeout (s)", description="Per-request timeout."
    )

    def get_engine(self, language: str) -> ClovaSpeechLongForm:
        return ClovaSpeechLongForm(
            invoke_url=self.invoke_url,
            secret_key=self.secret_key.get_secret_value(),
            language=language,
            send_url=self.send_url,
            diarization=self.diarization,
            sync_max_audio_seconds=self.sync_max_audio_seconds,
            poll_interval_s=self.poll_interval_seconds,
            poll_max_interval_s=self.poll_max_interval_seconds,
            deadline_s=self.deadline_seconds,
            timeout_s=self.timeout_seconds,
        )

"""CLOVA Speech (long-form recognition) credentials and options."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from video_processor.config import ClovaSpeechOptions
from video_processor.stt.clova_speech import ClovaSpeechLongForm


class ClovaSpeechCredentials(Block, ClovaSpeechOptions):
    """Invoke URL, secret key and options of a Naver CLOVA Speech (long-form) domain.

    The engine transcribes a whole video in one job (see ``video_processor.stt.clova_speech``);
    the options and their defaults are ``ClovaSpeechOptions``'.

    Example:
        ```python
        from blocks import ClovaSpeechCredentials
        from video_processor.stt.base import MediaSource

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

    def get_engine(self, language: str) -> ClovaSpeechLongForm:
        return ClovaSpeechLongForm(
            invoke_url=self.invoke_url,
            secret_key=self.secret_key.get_secret_value(),
            language=language,
            options=self,
        )

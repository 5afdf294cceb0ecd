"""CLOVA Speech Recognition credentials."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr

from video_processor.config import DEFAULT_CLOVA_CSR_TIMEOUT_S, DEFAULT_CLOVA_CSR_URL
from video_processor.stt.clova_csr import ClovaCsrSpeechToText


class ClovaCsrCredentials(Block):
    """Endpoint and API keys of Naver CLOVA Speech Recognition (CSR).

    Example:
        ```python
        from blocks import ClovaCsrCredentials
        engine = ClovaCsrCredentials.load("clova-csr").get_engine(language="ko")
        ```
    """

    _block_type_name = "CLOVA CSR Credentials"
    _block_type_slug = "clova-csr-credentials"
    _documentation_url = HttpUrl(
        "https://api.ncloud-docs.com/docs/en/ai-naver-clovaspeechrecognition-stt"
    )

    url: str = Field(
        default=DEFAULT_CLOVA_CSR_URL,
        title="Endpoint URL",
        description="The CSR endpoint; the `lang` query parameter is set per request.",
    )
    api_key_id: SecretStr = Field(title="API key ID", description="X-NCP-APIGW-API-KEY-ID.")
    api_key: SecretStr = Field(title="API key", description="X-NCP-APIGW-API-KEY.")
    timeout_seconds: float = Field(
        default=DEFAULT_CLOVA_CSR_TIMEOUT_S,
        gt=0,
        title="Timeout (s)",
        description="Per-request timeout.",
    )

    def get_engine(self, language: str) -> ClovaCsrSpeechToText:
        return ClovaCsrSpeechToText(
            url=self.url,
            api_key_id=self.api_key_id.get_secret_value(),
            api_key=self.api_key.get_secret_value(),
            language=language,
            timeout_s=self.timeout_seconds,
        )

"""The backend that receives job-completion callbacks."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from video_processor.callback import BackendClient
from video_processor.config import DEFAULT_CALLBACK_TIMEOUT_S


class BackendCallback(Block):
    """Base URL and internal token of the backend's callback endpoint.

    Example:
        ```python
        from blocks import BackendCallback
        client = BackendCallback.load("backend-callback").get_client()
        ```
    """

    _block_type_name = "Backend Callback"
    _block_type_slug = "backend-callback"

    base_url: str = Field(title="Base URL", description="e.g. https://backend.internal")
    internal_token: SecretStr = Field(
        title="Internal token", description="Sent as `X-Internal-Token`."
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        title="Signing secret",
        description="When set, callbacks carry an HMAC-SHA256 signature (X-Signature).",
    )
    timeout_seconds: float = Field(
        default=DEFAULT_CALLBACK_TIMEOUT_S,
        gt=0,
        title="Timeout (s)",
        description="Per-request timeout.",
    )

    def get_client(self) -> BackendClient:
        return BackendClient(
            base_url=self.base_url,
            internal_token=self.internal_token.get_secret_value(),
            signing_secret=self.signing_secret.get_secret_value() if self.signing_secret else None,
            timeout_s=self.timeout_seconds,
        )

"""The bootstrap command: blocks, limits and lifecycle rules on the local stack's servers."""

import os
import subprocess
import sys

import pytest
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect_aws import AwsCredentials, S3Bucket

from blocks import BackendCallback, ClaudeCredentials, ClovaSpeechCredentials
from local_stack.stack import REPO_ROOT
from operations.bootstrap import desired_blocks
from tests.e2e.stack_client import StackClient
from video_processor.config import load_settings


def run_bootstrap(stack: StackClient, **overrides: str) -> None:
    env = {**os.environ, **stack.env, **overrides}
    subprocess.run(
        [sys.executable, "-m", "operations.bootstrap"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.mark.e2e
def test_bootstrap_creates_every_block_and_updates_them_in_place(stack: StackClient):
    api = {
        PREFECT_API_URL: stack.env["PREFECT_API_URL"],
        PREFECT_API_AUTH_STRING: stack.env["PREFECT_API_AUTH_STRING"],
    }
    with temporary_settings(updates=api):
        before = ClaudeCredentials.load("claude")
        run_bootstrap(
            stack, CLAUDE_MAX_TOKENS="777", CLAUDE_REQUESTS_PER_MINUTE="90", WORK_EXPIRY_DAYS="3"
        )
        try:
            after = ClaudeCredentials.load("claude")
            assert isinstance(before, ClaudeCredentials) and isinstance(after, ClaudeCredentials)
            assert after._block_document_id == before._block_document_id
            assert after.max_tokens == 777
            assert after.api_key.get_secret_value() == stack.env["CLAUDE_API_KEY"]
            bucket = S3Bucket.load("result-bucket")
            assert isinstance(bucket, S3Bucket) and bucket.bucket_name == stack.result_bucket
            credentials = AwsCredentials.load("video-processor-aws")
            assert isinstance(credentials, AwsCredentials)
            assert credentials.aws_client_parameters.endpoint_url == stack.env["AWS_ENDPOINT_URL"]
            backend = BackendCallback.load("backend-callback")
            assert isinstance(backend, BackendCallback)
            assert backend.base_url == stack.env["BACKEND_BASE_URL"]
            with stack.prefect() as client:
                concurrency = client.read_global_concurrency_limit_by_name("llm-claude")
                rate = client.read_global_concurrency_limit_by_name("rate-llm-claude")
            assert concurrency.slot_decay_per_second == 0
            assert (rate.limit, rate.slot_decay_per_second) == (90, 1.5)
            rules = stack.s3().get_bucket_lifecycle_configuration(Bucket=stack.result_bucket)
            expiry = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules["Rules"]}
            assert expiry == {"work/": 3, "prefect-results/": 3}
        finally:
            run_bootstrap(stack)


def test_bootstrap_refuses_to_run_without_a_backend_token(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "operations.bootstrap"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "BACKEND_INTERNAL_TOKEN" in result.stderr


def test_clova_speech_block_is_created_only_when_configured(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKEND_INTERNAL_TOKEN", "t")
    assert "clova-speech" not in desired_blocks(load_settings())
    monkeypatch.setenv(
        "CLOVA_SPEECH_INVOKE_URL", "https://clovaspeech-gw.ncloud.com/external/v1/1/k"
    )
    monkeypatch.setenv("CLOVA_SPEECH_SECRET_KEY", "speech-secret")
    monkeypatch.setenv("CLOVA_SPEECH_SYNC_MAX_AUDIO_SECONDS", "120")
    block = desired_blocks(load_settings())["clova-speech"]
    assert isinstance(block, ClovaSpeechCredentials)
    assert block.secret_key.get_secret_value() == "speech-secret"
    assert block.sync_max_audio_seconds == 120

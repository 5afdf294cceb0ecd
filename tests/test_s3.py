"""S3 error mapping: what botocore raises becomes one error with a retry verdict."""

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from video_processor import s3
from video_processor.errors import DownloadError


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (403, "AccessDenied", False),
        (404, "NoSuchKey", False),
        (503, "SlowDown", True),
        (500, "InternalError", True),
    ],
)
def test_head_errors_map_to_s3_download_failed(status, code, retryable, tmp_path: Path):
    client = boto3.client(
        "s3", region_name="ap-northeast-2", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error("head_object", service_error_code=code, http_status_code=status)
        with pytest.raises(DownloadError, match=f"HTTP {status} {code}") as caught:
            s3.object_size(client, "bucket", "videos/u/j.mp4")
    assert caught.value.code == "S3_DOWNLOAD_FAILED"
    assert caught.value.retryable is retryable


def test_missing_json_document_reads_as_none(s3_client):
    s3_client.create_bucket(
        Bucket="json-docs", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    assert s3.read_json(s3_client, "json-docs", "absent.json") is None

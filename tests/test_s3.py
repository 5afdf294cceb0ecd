"""S3 error mapping: what botocore raises becomes one error with a retry verdict."""

import uuid
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


def test_expiry_rules_are_set_next_to_the_bucket_s_other_rules(s3_client):
    bucket = f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"}
    )
    logs_rule = {
        "ID": "operators-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [logs_rule]}
    )

    s3.ensure_expiry_rules(s3_client, bucket, {"expire-work": "work/"}, 7)
    s3.ensure_expiry_rules(s3_client, bucket, {"expire-work": "work/"}, 5)  # re-run: updated

    rules = {
        rule["ID"]: rule
        for rule in s3_client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    }
    assert set(rules) == {"operators-logs", "expire-work"}
    assert rules["expire-work"]["Filter"] == {"Prefix": "work/"}
    assert rules["expire-work"]["Expiration"] == {"Days": 5}
    assert rules["operators-logs"]["Expiration"] == {"Days": 30}

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from video_processor.events import MessageParseError, RejectedRecord, parse_message_body
from video_processor.models import JobContext, S3ObjectRef

BUCKET = "shortform-video-bucket"


def s3_record(
    key: str, event_name: str = "ObjectCreated:Put", version: str = "2.1"
) -> dict[str, Any]:
    return {
        "eventVersion": version,
        "eventSource": "aws:s3",
        "awsRegion": "ap-northeast-2",
        "eventTime": "2024-11-22T10:30:45.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "cfg",
            "unknownField": 1,
            "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {
                "key": key,
                "size": 5242880,
                "eTag": "9001abc",
                "versionId": "v1",
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


def test_notification_with_several_records_yields_each_created_object():
    body = json.dumps(
        {"Records": [s3_record("videos%2F123%2F987654321.mp4"), s3_record("videos/123/555.mov")]}
    )
    parsed = parse_message_body(body)
    assert [obj.key for obj in parsed.objects] == ["videos/123/987654321.mp4", "videos/123/555.mov"]
    first = parsed.objects[0]
    assert (first.bucket, first.size, first.etag, first.version_id) == (
        BUCKET,
        5242880,
        "9001abc",
        "v1",
    )


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("videos/1/my+clip.mp4", "videos/1/my clip.mp4"),
        ("videos/1/%ED%95%9C%EA%B8%80.mp4", "videos/1/한글.mp4"),
        ("videos/1/a%2Bb.mp4", "videos/1/a+b.mp4"),
    ],
)
def test_keys_are_decoded_form_style(encoded: str, decoded: str):
    parsed = parse_message_body(json.dumps({"Records": [s3_record(encoded)]}))
    assert parsed.objects[0].key == decoded


def test_test_event_is_recognised():
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "t",
            "Bucket": BUCKET,
            "RequestId": "r",
            "HostId": "h",
        }
    )
    parsed = parse_message_body(body)
    assert parsed.is_test_event and not parsed.objects


def test_sns_envelope_is_unwrapped():
    inner = json.dumps({"Records": [s3_record("videos%2F1%2F2.mp4")]})
    body = json.dumps(
        {"Type": "Notification", "MessageId": "m", "TopicArn": "arn", "Message": inner}
    )
    assert parse_message_body(body).objects[0].key == "videos/1/2.mp4"


def eventbridge(key: str) -> dict[str, Any]:
    return {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2024-11-22T10:30:45Z",
        "detail": {
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": 10, "etag": "e1", "version-id": "v9"},
        },
    }


def sns(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "arn",
        "Message": json.dumps(document),
    }


SPACED_HANGUL = "videos/1/내 영상 1.mp4"
SPACED_HANGUL_ENCODED = "videos/1/%EB%82%B4+%EC%98%81%EC%83%81+1.mp4"


@pytest.mark.parametrize(
    "document",
    [
        {"Records": [s3_record(SPACED_HANGUL_ENCODED)]},
        sns({"Records": [s3_record(SPACED_HANGUL_ENCODED)]}),
        eventbridge(SPACED_HANGUL_ENCODED),
        sns(eventbridge(SPACED_HANGUL_ENCODED)),
        # The undecoded reading of an EventBridge key: decoding leaves it as it is.
        eventbridge(SPACED_HANGUL),
    ],
    ids=["s3", "sns-s3", "eventbridge-encoded", "sns-eventbridge", "eventbridge-raw"],
)
def test_a_key_with_spaces_and_hangul_is_decoded_in_every_shape(document: dict[str, Any]):
    [obj] = parse_message_body(json.dumps(document)).objects
    assert obj.key == SPACED_HANGUL


def test_eventbridge_keys_are_url_decoded_like_s3_notifications():
    [obj] = parse_message_body(json.dumps(eventbridge("videos/1/a%2Db.mp4"))).objects
    assert (obj.key, obj.etag, obj.version_id) == ("videos/1/a-b.mp4", "e1", "v9")


def test_a_malformed_record_is_rejected_alone_and_named_by_its_index():
    bad = s3_record("videos/1/bad.mp4")
    bad["eventTime"] = "yesterday"
    body = json.dumps({"Records": [s3_record("videos/1/good.mp4"), bad]})

    parsed = parse_message_body(body)

    assert [obj.key for obj in parsed.objects] == ["videos/1/good.mp4"]
    [rejected] = parsed.rejected
    assert rejected.reason.startswith("record 1: malformed S3 record: eventTime")
    assert rejected.record == bad


def test_removal_and_future_major_versions_are_skipped_with_a_reason():
    body = json.dumps(
        {
            "Records": [
                s3_record("videos/1/2.mp4", "ObjectRemoved:Delete"),
                s3_record("videos/1/3.mp4", version="3.0"),
                s3_record("videos/1/4.mp4", version="2.2"),
            ]
        }
    )
    parsed = parse_message_body(body)
    assert [obj.key for obj in parsed.objects] == ["videos/1/4.mp4"]
    assert any("not an object creation" in reason for reason in parsed.skipped)
    assert any("eventVersion 3.0" in reason for reason in parsed.skipped)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"hello": "world"}', "unknown message shape"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "malformed S3 notification"),
        ('{"Type": "Notification", "Message": "oops"}', "not JSON"),
    ],
)
def test_unparseable_bodies_raise_with_the_reason(body: str, reason: str):
    with pytest.raises(MessageParseError, match=reason):
        parse_message_body(body)


@pytest.mark.parametrize(
    "key",
    [
        "videos/u1/job1.mp4\n",
        "videos/u1/job1.mp4\r\n",
        "videos/u1\t/job1.mp4",
        "videos/u1/job1.mp4\t",
        "videos/u1/job1\x00.mp4",
        "videos/u1/job1.mp4\x1f",
        "videos/u1/job1.mp4\x7f",
    ],
)
def test_keys_with_control_characters_do_not_follow_the_layout(key: str):
    assert JobContext.from_object(S3ObjectRef(bucket=BUCKET, key=key)) is None


def test_job_context_follows_the_key_layout_and_idempotency_key_tracks_the_version():
    [obj] = parse_message_body(json.dumps({"Records": [s3_record("videos/123/987.mp4")]})).objects
    job = JobContext.from_object(obj)
    assert job is not None
    assert (job.user_id, job.job_id, job.extension) == ("123", "987", "mp4")
    assert job.result_key == "results/123/987.json"
    other_version = JobContext.from_object(obj.model_copy(update={"version_id": "v2"}))
    assert other_version is not None
    assert job.idempotency_key != other_version.idempotency_key
    assert job.idempotency_key == JobContext.from_object(obj).idempotency_key  # type: ignore[union-attr]


def test_each_skipped_record_says_what_and_why():
    other_source = s3_record("videos/1/5.mp4")
    other_source["eventSource"] = "aws:sqs"
    body = json.dumps(
        {
            "Records": [
                s3_record("videos/1/2.mp4", "ObjectRemoved:Delete"),
                s3_record("videos/1/3.mp4", version="3.0"),
                other_source,
                s3_record("videos/1/4.mp4", "ObjectCreated:CompleteMultipartUpload", "2.0"),
            ]
        }
    )
    parsed = parse_message_body(body)
    where = f"s3://{BUCKET}/videos/1"
    assert parsed.skipped == [
        f"ObjectRemoved:Delete {where}/2.mp4: not an object creation",
        f"ObjectCreated:Put {where}/3.mp4: unsupported eventVersion 3.0",
        f"ObjectCreated:Put {where}/5.mp4: event source 'aws:sqs'",
    ]
    [created] = parsed.objects
    assert created.event_name == "ObjectCreated:CompleteMultipartUpload"
    assert created.event_time == datetime(2024, 11, 22, 10, 30, 45, tzinfo=UTC)
    assert not parsed.is_test_event and parsed.rejected == []


def test_a_notification_whose_records_all_fail_is_refused_with_every_reason():
    first, second = s3_record("videos/1/a.mp4"), s3_record("videos/1/b.mp4")
    del first["eventSource"]
    second["s3"]["object"]["size"] = "big"
    with pytest.raises(MessageParseError) as caught:
        parse_message_body(json.dumps({"Records": [first, second]}))
    assert str(caught.value) == (
        "malformed S3 notification: record 0: malformed S3 record: eventSource: Field required; "
        "record 1: malformed S3 record: s3.object.size: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


def test_an_eventbridge_object_created_event_becomes_one_object():
    [obj] = parse_message_body(json.dumps(eventbridge("videos/1/2.mp4"))).objects
    assert obj == S3ObjectRef(
        bucket=BUCKET,
        key="videos/1/2.mp4",
        size=10,
        etag="e1",
        version_id="v9",
        event_name="ObjectCreated:EventBridge",
        event_time=datetime(2024, 11, 22, 10, 30, 45, tzinfo=UTC),
    )
    deleted = {**eventbridge("videos/1/2.mp4"), "detail-type": "Object Deleted"}
    parsed = parse_message_body(json.dumps(deleted))
    assert parsed.objects == []
    assert parsed.skipped == [
        f"Object Deleted s3://{BUCKET}/videos/1/2.mp4: not an object creation"
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"b": 1, "a": 2}, "unknown message shape with keys ['a', 'b']"),
        ({"source": "aws.s3"}, "unknown message shape with keys ['source']"),
        (
            {"source": "aws.sqs", "detail": {}},
            "unknown message shape with keys ['detail', 'source']",
        ),
        (
            {"Type": "Notification", "Message": 1},
            "unknown message shape with keys ['Message', 'Type']",
        ),
        ({"Records": "x"}, "malformed S3 notification: Records: Input should be a valid list"),
        (
            {"source": "aws.s3", "detail": {}, "detail-type": "Object Created"},
            "malformed EventBridge event: detail.bucket: Field required",
        ),
    ],
)
def test_unknown_shapes_are_named_by_their_keys(document: dict[str, Any], message: str):
    with pytest.raises(MessageParseError) as caught:
        parse_message_body(json.dumps(document))
    assert str(caught.value) == message


def test_only_the_s3_test_event_is_a_test_event():
    assert not parse_message_body(json.dumps({"Records": []})).is_test_event
    with pytest.raises(MessageParseError):
        parse_message_body(json.dumps({"Event": "s3:ObjectCreated"}))


def test_fields_an_event_leaves_out_stay_unset():
    record = s3_record("videos/1/2.mp4")
    del record["eventTime"]
    record["s3"]["object"] = {"key": "videos/1/2.mp4"}
    [obj] = parse_message_body(json.dumps({"Records": [record]})).objects
    assert (obj.size, obj.etag, obj.version_id, obj.event_time) == (None, None, None, None)
    bare = eventbridge("videos/1/2.mp4")
    del bare["time"]
    bare["detail"]["object"] = {"key": "videos/1/2.mp4"}
    [obj] = parse_message_body(json.dumps(bare)).objects
    assert (obj.size, obj.etag, obj.version_id, obj.event_time) == (None, None, None, None)


def test_parsed_messages_are_frozen():
    parsed = parse_message_body(json.dumps({"Records": [s3_record("videos/1/2.mp4")]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.is_test_event = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RejectedRecord("why", {}).reason = "other"  # type: ignore[misc]


def test_bodies_that_are_not_json_objects_are_named_exactly():
    with pytest.raises(MessageParseError) as not_json:
        parse_message_body("{")
    assert str(not_json.value).startswith("body is not JSON: Expecting property name")
    with pytest.raises(MessageParseError) as not_object:
        parse_message_body("[1]")
    assert str(not_object.value) == "body is JSON list, not an object"
    with pytest.raises(MessageParseError) as many_keys:
        parse_message_body(json.dumps({f"k{i:02}": i for i in range(12)}))
    listed = ", ".join(f"'k{i:02}'" for i in range(10))
    assert str(many_keys.value) == f"unknown message shape with keys [{listed}]"

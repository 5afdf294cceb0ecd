import hashlib
import hmac

import pytest

from video_processor import signing

BODY = b'{"status":"DONE"}'


def test_signature_round_trip_and_tampering():
    signature = signing.sign("secret", 1_700_000_000, BODY)
    assert signature.startswith("v1=")
    assert signing.verify("secret", "1700000000", BODY, signature, now=1_700_000_010)
    assert not signing.verify("other", "1700000000", BODY, signature, now=1_700_000_010)
    assert not signing.verify("secret", "1700000000", BODY + b" ", signature, now=1_700_000_010)
    assert not signing.verify("secret", "1700000001", BODY, signature, now=1_700_000_010)


def test_stale_or_missing_timestamps_are_refused():
    signature = signing.sign("secret", 1_700_000_000, BODY)
    assert not signing.verify("secret", "1700000000", BODY, signature, now=1_700_001_000)
    assert not signing.verify("secret", None, BODY, signature, now=1_700_000_000)
    assert not signing.verify("secret", "abc", BODY, signature, now=1_700_000_000)


def test_signature_matches_a_vector_computed_from_the_contract():
    # The contract (README, "For backend authors"): X-Signature is "v1=" + hex HMAC-SHA256
    # of "{timestamp}." + raw body, sent with X-Signature-Timestamp and X-Delivery-Id.
    expected = hmac.new(b"secret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signing.sign("secret", 1_700_000_000, BODY) == f"v1={expected}"
    assert signing.verify("secret", "1700000000", BODY, f"v1={expected}", now=1_700_000_000)
    assert (signing.SIGNATURE_HEADER, signing.TIMESTAMP_HEADER, signing.DELIVERY_ID_HEADER) == (
        "X-Signature",
        "X-Signature-Timestamp",
        "X-Delivery-Id",
    )


@pytest.mark.parametrize(
    ("skew_s", "accepted"), [(300, True), (-300, True), (301, False), (-301, False)]
)
def test_timestamps_are_accepted_up_to_five_minutes_either_way(skew_s: int, accepted: bool):
    signature = signing.sign("secret", 1_700_000_000, BODY)
    now = 1_700_000_000 + skew_s
    assert signing.verify("secret", "1700000000", BODY, signature, now=now) is accepted


def test_a_missing_signature_is_refused():
    assert signing.verify("secret", "1700000000", BODY, None, now=1_700_000_000) is False
    assert signing.verify("secret", "", BODY, "v1=00", now=1_700_000_000) is False

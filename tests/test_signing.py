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

"""Callback signatures: HMAC-SHA256 over `"{timestamp}.{body}"`, for backend authors.

Headers of a signed callback:

    X-Delivery-Id: <stable id of this job version's final state; the same on every re-send>
    X-Signature-Timestamp: <unix seconds when it was sent>
    X-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

A backend verifies by recomputing the HMAC over the raw request body, comparing in
constant time, and refusing timestamps further than a few minutes from its clock.
"""

from __future__ import annotations

import hashlib
import hmac

DELIVERY_ID_HEADER = "X-Delivery-Id"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether the signature is ours and fresh."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)

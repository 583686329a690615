"""The signature on every callback we POST, Stripe-style, so the receiver knows it came from us.

    X-Dispatcher-Timestamp: <unix seconds>
    X-Dispatcher-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed by WEBHOOK_SECRET>

The timestamp is inside the signed text, so a captured request cannot be replayed later with a
fresh timestamp; receivers refuse timestamps older than five minutes. `verify` is what a receiver
runs (docs/callbacks.md shows it, and a TypeScript twin).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Dispatcher-Timestamp"
SIGNATURE_HEADER = "X-Dispatcher-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float | None = None) -> bool:
    """True when the signature is ours and the timestamp is within five minutes of now."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > TOLERANCE_SECONDS:
        return False
    # Bytes, not str: compare_digest raises on a str with non-ASCII characters, which a forged header may have.
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), (signature or "").encode("utf-8", "replace"))

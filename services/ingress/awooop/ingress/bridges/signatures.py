"""Verifying that a webhook request comes from its provider: pure functions, no I/O.

Telegram sends the ``secret_token`` given to ``setWebhook`` in the header
``X-Telegram-Bot-Api-Secret-Token``. Slack signs every request with the app's signing
secret: ``v0=`` + hex HMAC-SHA256 of ``v0:<X-Slack-Request-Timestamp>:<raw body>``, in
``X-Slack-Signature``, and a timestamp more than five minutes from now (either way) is a
replay. Every comparison is constant-time. A refusal's reason never quotes a header value.
"""

from __future__ import annotations

import hashlib
import hmac

SLACK_VERSION = "v0"
SLACK_TOLERANCE_SECONDS = 300
"""Slack's replay window: a request signed more than five minutes from now is refused."""


class SignatureRefused(Exception):
    """The request is not verified as the provider's; ``reason`` says why (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verify_telegram_secret(expected: str, presented: str | None) -> None:
    """Refuse unless ``presented`` (the header's value) equals the bot's ``expected`` token."""
    if presented is None:
        raise SignatureRefused("X-Telegram-Bot-Api-Secret-Token is missing")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold any byte.
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise SignatureRefused("X-Telegram-Bot-Api-Secret-Token does not match")


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of ``body`` sent at ``timestamp`` (seconds, as in the header)."""
    base = f"{SLACK_VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return f"{SLACK_VERSION}={digest}"


def verify_slack_request(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
) -> None:
    """Refuse a request whose headers are missing, whose timestamp lies more than
    :data:`SLACK_TOLERANCE_SECONDS` from ``now``, or whose signature is not that of
    ``body``, the raw bytes as received."""
    if timestamp is None or signature is None:
        missing = "X-Slack-Request-Timestamp" if timestamp is None else "X-Slack-Signature"
        raise SignatureRefused(f"{missing} is missing")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureRefused("X-Slack-Request-Timestamp is not a Unix time in seconds")
    if abs(now - int(timestamp)) > SLACK_TOLERANCE_SECONDS:
        raise SignatureRefused(
            f"X-Slack-Request-Timestamp is more than {SLACK_TOLERANCE_SECONDS} s from now"
        )
    expected = slack_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureRefused("X-Slack-Signature does not match the body")

"""Webhook verification: given a request's headers and raw body, then accepted or refused
with a reason that names no secret. Slack's cases follow its "Verifying requests from
Slack" guide: v0 HMAC-SHA256 of ``v0:<timestamp>:<body>``, five minutes either way."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from awooop.ingress.bridges.signatures import (
    SLACK_TOLERANCE_SECONDS,
    SignatureRefused,
    slack_signature,
    verify_slack_request,
    verify_telegram_secret,
)

pytestmark = pytest.mark.unit

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_740_830_400
BODY = b'{"type":"event_callback","event_id":"Ev0PV52K21","event":{"type":"message"}}'


def _signed(body: bytes = BODY, timestamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(timestamp)
    return {"timestamp": stamp, "signature": slack_signature(secret, stamp, body)}


def _verify(
    body: bytes = BODY,
    now: float = NOW,
    /,
    *,
    timestamp: str | None = None,
    signature: str | None = None,
) -> None:
    verify_slack_request(SECRET, timestamp=timestamp, signature=signature, body=body, now=now)


def test_the_signature_is_slacks_v0_hmac_of_the_raw_body() -> None:
    """Break caught: signing anything but ``v0:<timestamp>:<body>`` (a parsed body, another
    separator), which no real Slack request would ever match."""
    digest = hmac.new(SECRET.encode(), f"v0:{NOW}:".encode() + BODY, hashlib.sha256)
    assert slack_signature(SECRET, str(NOW), BODY) == "v0=" + digest.hexdigest()


def test_a_validly_signed_request_is_accepted() -> None:
    _verify(**_signed())


def test_a_request_signed_at_the_edge_of_the_window_is_accepted() -> None:
    _verify(**_signed(timestamp=NOW - SLACK_TOLERANCE_SECONDS))
    _verify(**_signed(timestamp=NOW + SLACK_TOLERANCE_SECONDS))


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="does not match") as refused:
        _verify(**_signed(secret="another-signing-secret"))
    assert SECRET not in refused.value.reason


def test_a_forged_signature_is_refused() -> None:
    forged = {"timestamp": str(NOW), "signature": "v0=" + "0" * 64}
    with pytest.raises(SignatureRefused, match="does not match"):
        _verify(**forged)


def test_a_body_altered_after_signing_is_refused() -> None:
    """Break caught: verifying a re-serialised or parsed body instead of the raw bytes."""
    headers = _signed()
    altered = BODY.replace(b"Ev0PV52K21", b"Ev0PV52K22")
    with pytest.raises(SignatureRefused, match="does not match the body"):
        _verify(altered, **headers)
    with pytest.raises(SignatureRefused):
        _verify(BODY + b" ", **headers)


def test_a_stale_request_is_refused_even_when_validly_signed() -> None:
    """Break caught: a replay of a captured request accepted long after it was signed."""
    with pytest.raises(SignatureRefused, match="more than 300 s from now"):
        _verify(**_signed(timestamp=NOW - SLACK_TOLERANCE_SECONDS - 1))


def test_a_request_from_the_future_is_refused_even_when_validly_signed() -> None:
    """Break caught: checking only ``now - timestamp``, so a far-future stamp replays
    for as long as the attacker likes."""
    with pytest.raises(SignatureRefused, match="more than 300 s from now"):
        _verify(**_signed(timestamp=NOW + SLACK_TOLERANCE_SECONDS + 1))


@pytest.mark.parametrize("missing", ["timestamp", "signature"])
def test_a_request_missing_a_header_is_refused(missing: str) -> None:
    headers: dict[str, str | None] = dict(_signed())
    headers[missing] = None
    header = "X-Slack-Request-Timestamp" if missing == "timestamp" else "X-Slack-Signature"
    with pytest.raises(SignatureRefused, match=f"{header} is missing"):
        _verify(**headers)


@pytest.mark.parametrize("stamp", ["", "17408e5", "-1740830400", "1740830400.5", "٣٣"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stamp: str) -> None:
    headers = {"timestamp": stamp, "signature": slack_signature(SECRET, stamp, BODY)}
    with pytest.raises(SignatureRefused, match="not a Unix time"):
        _verify(**headers)


def test_a_non_ascii_signature_is_refused_not_raised() -> None:
    """Break caught: ``compare_digest`` on str raising TypeError for non-ASCII input, which
    would turn a forged header into a 500."""
    with pytest.raises(SignatureRefused):
        _verify(timestamp=str(NOW), signature="v0=é")


TOKEN = "tg-webhook-secret_123"


def test_the_telegram_secret_token_is_accepted() -> None:
    verify_telegram_secret(TOKEN, TOKEN)


@pytest.mark.parametrize("presented", ["tg-webhook-secret_124", "", TOKEN + "x", "é"])
def test_a_wrong_telegram_secret_token_is_refused(presented: str) -> None:
    with pytest.raises(SignatureRefused, match="does not match") as refused:
        verify_telegram_secret(TOKEN, presented)
    assert TOKEN not in refused.value.reason


def test_a_missing_telegram_secret_token_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="is missing"):
        verify_telegram_secret(TOKEN, None)

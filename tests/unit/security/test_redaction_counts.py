"""Redaction counts, and the shapes every redaction must cover, in text, in values and in keys.

Secrets below are assembled from parts, so that no complete credential sits in the source.
"""

from __future__ import annotations

import base64
import json

import pytest

from awooop.security.redaction import (
    KINDS,
    MIN_LIMIT,
    TRUNCATED,
    Redacted,
    is_sensitive_key,
    redact_counted,
    redact_text,
    redact_text_counted,
    redact_value,
)

pytestmark = pytest.mark.unit


def _b64(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


JWT = ".".join([_b64('{"alg":"RS256"}'), _b64('{"sub":"42"}'), "q9W-" * 8])
AWS_KEY_ID = "AKIA" + "Z7Q4" * 4
AWS_TEMPORARY_KEY_ID = "ASIA" + "3KX9" * 4
PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI" + "Lk3+" * 10 + "\n-----END EC PRIVATE KEY-----"
BEARER_TOKEN = "tok_" + "9fQ2" * 6
URL_PASSWORD = "Pa55" + "-w0rd!"
# Each: the secret, the text it sits in, what that text becomes, the kind counted.
COVERED = {
    "aws key id": (AWS_KEY_ID, f"id {AWS_KEY_ID} here", "id [REDACTED:api_key] here", "api_key"),
    "aws temporary key id": (
        AWS_TEMPORARY_KEY_ID,
        f"key={AWS_TEMPORARY_KEY_ID}",
        "key=[REDACTED:api_key]",
        "api_key",
    ),
    "jwt": (JWT, f"session {JWT}.", "session [REDACTED:jwt].", "jwt"),
    "pem private key": (
        PEM,
        f"key:\n{PEM}\nend",
        "key:\n[REDACTED:private_key]\nend",
        "private_key",
    ),
    "bearer": (
        BEARER_TOKEN,
        f"curl -H 'Bearer {BEARER_TOKEN}'",
        "curl -H 'Bearer [REDACTED:bearer]'",
        "bearer",
    ),
    "authorization bearer": (
        BEARER_TOKEN,
        f"Authorization: Bearer {BEARER_TOKEN}",
        "Authorization: Bearer [REDACTED:bearer]",
        "bearer",
    ),
    "bearer without a digit": (
        "QmFzZVRva2VuT2ZMZXR0ZXJz",
        "Bearer QmFzZVRva2VuT2ZMZXR0ZXJz ok",
        "Bearer [REDACTED:bearer] ok",
        "bearer",
    ),
    "url password": (
        URL_PASSWORD,
        f"amqp://worker:{URL_PASSWORD}@mq.internal:5672/",
        "amqp://worker:[REDACTED:secret]@mq.internal:5672/",
        "secret",
    ),
    "email": ("ops.team@example.io", "cc ops.team@example.io.", "cc [REDACTED:email].", "email"),
    "card with spaces": (
        "5555 5555 5555 4444",
        "card 5555 5555 5555 4444 ok",
        "card [REDACTED:card] ok",
        "card",
    ),
    "card with dashes": (
        "4111-1111-1111-1111",
        "(4111-1111-1111-1111)",
        "([REDACTED:card])",
        "card",
    ),
    "taiwan national id": (
        "A123456789",
        "ID: A123456789.",
        "ID: [REDACTED:national_id].",
        "national_id",
    ),
    "taiwan resident certificate": (
        "A800000014",
        "ARC A800000014",
        "ARC [REDACTED:national_id]",
        "national_id",
    ),
    "phone": ("+886 912 345 678", "tel +886 912 345 678!", "tel [REDACTED:phone]!", "phone"),
}


@pytest.mark.parametrize("name", sorted(COVERED))
def test_each_covered_shape_is_replaced_and_counted_in_text(name: str) -> None:
    secret, text, expected, kind = COVERED[name]
    shown = redact_text_counted(text)
    assert shown == Redacted(expected, {kind: 1})
    assert redact_text(text) == expected
    assert secret not in str(shown.value)


@pytest.mark.parametrize("name", sorted(COVERED))
def test_each_covered_shape_is_replaced_and_counted_as_a_value_and_as_a_key(name: str) -> None:
    secret, text, expected, kind = COVERED[name]
    shown = redact_counted({"note": [text], text: 1})
    # A key may also name what it holds ("Authorization: …", "… PRIVATE KEY …").
    if is_sensitive_key(text):
        secret_value = {"note": [expected], expected: "[REDACTED:secret]"}
        assert shown == Redacted(secret_value, {kind: 2, "secret": 1})
    else:
        assert shown == Redacted({"note": [expected], expected: 1}, {kind: 2})
    assert secret not in json.dumps(shown.value)


def test_counts_say_how_many_of_each_kind_and_never_which() -> None:
    result = {
        "customer": {"email": "ann@example.org", "id": "F231104095", "phone": "+44 20 7946 0958"},
        "cards": [4111111111111111, "5555 5555 5555 4444", "4111 1111 1111 1112"],
        "headers": {"Authorization": "Bearer abc", "Set-Cookie": {"sid": "x"}},
        "bob@example.org": "a key that is an address",
        "ids": "A123456789 and A123456788",
        "count": 1234,
    }
    shown = redact_counted(result)
    assert shown.value == redact_value(result)
    assert shown.counts == {"card": 2, "email": 2, "national_id": 2, "phone": 1, "secret": 2}
    assert list(shown.counts) == sorted(shown.counts)
    assert set(shown.counts) <= KINDS
    assert all(secret not in json.dumps(shown.counts) for secret in ("ann", "4111", "A123"))


def test_a_value_replaced_because_of_its_key_counts_once_under_secret() -> None:
    value = {"password": {"cards": ["4111111111111111"] * 3}, "api_key": None}
    assert redact_counted(value) == Redacted(
        {"password": "[REDACTED:secret]", "api_key": "[REDACTED:secret]"}, {"secret": 2}
    )


def test_counting_redacted_output_counts_nothing() -> None:
    value = {
        "token": "abc",
        "note": "mail bob@example.org, card 4111 1111 1111 1111, id A123456789",
        "a@example.org": 4111111111111111,
        "url": "https://u:pw@example.com/",
    }
    once = redact_counted(value)
    assert once.counts == {"card": 2, "email": 2, "national_id": 1, "secret": 2}
    assert redact_counted(once.value) == Redacted(once.value, {})
    text = redact_text_counted("x@example.org password=hunter2")
    assert text.counts == {"email": 1, "secret": 1}
    assert redact_text_counted(str(text.value)) == Redacted(text.value, {})


def test_a_marker_swallowed_by_a_new_secret_is_not_counted_as_new() -> None:
    # The old card marker goes inside the new secret's marker: one marker added, one gone.
    shown = redact_text_counted('password="[REDACTED:card] and more"')
    assert shown == Redacted('password="[REDACTED:secret]"', {"secret": 1})


def test_truncation_is_counted_and_what_was_cut_away_still_counts() -> None:
    value = {"note": "x" * 200, "tail": "card 4111 1111 1111 1111 and a@example.org"}
    shown = redact_counted(value, limit=MIN_LIMIT)
    assert shown.value == redact_value(value, limit=MIN_LIMIT)
    assert isinstance(shown.value, str)
    assert shown.value.endswith(" bytes]")
    assert shown.counts == {"card": 1, "email": 1, TRUNCATED: 1}
    text = redact_text_counted("y" * 100 + " A123456789", limit=MIN_LIMIT)
    assert text.value == redact_text("y" * 100 + " A123456789", limit=MIN_LIMIT)
    assert text.counts == {"national_id": 1, TRUNCATED: 1}
    assert redact_counted({"n": 1}, limit=MIN_LIMIT) == Redacted({"n": 1}, {})


def test_counted_redaction_refuses_what_uncounted_redaction_refuses() -> None:
    with pytest.raises(TypeError, match="cannot redact"):
        redact_counted({1: "int key"})
    with pytest.raises(ValueError, match="at least 64"):
        redact_counted("x", limit=10)
    with pytest.raises(ValueError, match="at least 64"):
        redact_text_counted("x", limit=10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +1 415 555 2671 2pm", "call [REDACTED:phone] 2pm"),
        ("+1 415 555 2671 4111 1111 1111 1111", "[REDACTED:phone] [REDACTED:card]"),
        ("+44 20 7946 0958 4111 1111 1111 1111", "[REDACTED:phone] [REDACTED:card]"),
        ("+44 20 7946 0958 1234 5678 9", "[REDACTED:phone] 1234 5678 9"),
        ("+123456789012345678", "+123456789012345678"),
        ("+4111 1111 1111 1111", "+[REDACTED:card]"),
    ],
)
def test_a_phone_number_followed_by_other_numbers_is_still_found(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Bearer bonds are old; a Bearer instrument; Bearer TOKENSAREHERE; Bearer tokensarehere.",
        "xA123456789 A1234567890 A123456789b A323456789 A123456780",
    ],
)
def test_lookalikes_are_left_alone_and_uncounted(text: str) -> None:
    assert redact_text_counted(text) == Redacted(text, {})


def test_what_redacting_the_json_text_again_replaces_counts_too() -> None:
    # Over the limit, the JSON text is redacted again before the cut. There the newline is
    # an escape, "\n", so the value after "Authorization: Bearer" runs on into the next
    # word, and the bearer marker with it becomes a secret.
    value = "x" * 40 + "\nAuthorization: Bearer " + "a1b2c3d4e5" + "\nfine"
    shown = redact_counted(value, limit=MIN_LIMIT)
    assert shown.value == redact_value(value, limit=MIN_LIMIT)
    assert "[REDACTED:secret]" in redact_text(json.dumps(redact_value(value), ensure_ascii=False))
    assert shown.counts == {"bearer": 1, "secret": 1, TRUNCATED: 1}


def test_keys_made_equal_by_redaction_stay_distinct_when_redacted_again() -> None:
    value = {"token: abc": 1, "token: xyz": 2, "a@example.org": 3, "b@example.org": 4}
    once = redact_counted(value)
    assert once.value == {
        "token: [REDACTED:secret]": 1,
        "token: [REDACTED:secret] #2": 2,
        "[REDACTED:email]": 3,
        "[REDACTED:email]#2": 4,
    }
    assert once.counts == {"email": 2, "secret": 2}
    assert redact_counted(once.value) == Redacted(once.value, {})

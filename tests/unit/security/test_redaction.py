"""Redaction: what each pattern replaces and what it leaves, sensitive keys, truncation.

Secrets below are assembled from parts, so that no complete credential sits in the source.
Timing is measured by hand, never asserted here.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.security.redaction import (
    KINDS,
    MARKER_FORMAT,
    MARKER_PATTERN,
    MAX_DISPLAY_BYTES,
    MIN_LIMIT,
    is_sensitive_key,
    marker,
    redact_text,
    redact_value,
    truncation_marker,
)
from awooop.security.redaction_patterns import luhn_valid, mod97_valid, national_id_valid

pytestmark = pytest.mark.unit


def _b64(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def _luhn_completed(payload: str) -> str:
    """`payload` followed by the check digit that makes it Luhn-valid."""
    return next(payload + d for d in "0123456789" if luhn_valid(payload + d))


JWT = ".".join(
    [_b64('{"alg":"HS256","typ":"JWT"}'), _b64('{"sub":"1234567890"}'), "Sfl" + "Kxw-RJ_3" * 5]
)
SECRETS: dict[str, tuple[str, str]] = {
    "visa": ("4111 1111 1111 1111", "card"),
    "visa dashed": ("4111-1111-1111-1111", "card"),
    "mastercard": ("5555555555554444", "card"),
    "amex": ("3782 822463 10005", "card"),
    "visa 13 digits": ("4222222222222", "card"),
    "iban grouped": ("DE89 3704 0044 0532 0130 00", "iban"),
    "iban compact": ("GB82WEST12345698765432", "iban"),
    "iban with letters": ("FR1420041010050500013M02606", "iban"),
    "email": ("alice.smith+ops@example.co.uk", "email"),
    "phone": ("+1 415 555 2671", "phone"),
    "phone compact": ("+4915112345678", "phone"),
    "phone brackets": ("+1 (415) 555-2671", "phone"),
    "phone french": ("+33 1 23 45 67 89", "phone"),
    "openai": ("sk-" + "T3BlbkFJ" * 6, "api_key"),
    "openai project": ("sk-proj-" + "Ab1_cD2-" * 8, "api_key"),
    "anthropic": ("sk-ant-api03-" + "xY9" * 30, "api_key"),
    "slack bot": ("xoxb-" + "123456789012-1234567890123-" + "AbCdEf" * 4, "api_key"),
    "slack user": ("xoxp-" + "1234567890-" * 3 + "ab12" * 8, "api_key"),
    "slack app": ("xapp-" + "1-A0123456789-1234567890123-" + "ab12" * 16, "api_key"),
    "github classic": ("ghp_" + "aB3dE6gH9j" * 3 + "kL2mN5", "api_key"),
    "github oauth": ("gho_" + "Zz9" * 12, "api_key"),
    "github server": ("ghs_" + "Q1w2E3r4" * 5, "api_key"),
    "github fine-grained": ("github_pat_" + "11ABCDEFG0" + "_" + "x1" * 30, "api_key"),
    "aws key id": ("AKIA" + "IOSFODNN7EXAMPLE", "api_key"),
    "aws temporary key id": ("ASIA" + "Y34FZKBOKMUTVV7A", "api_key"),
    "google": ("AIza" + "SyD-" + "a1B2c3D4e5" * 3 + "f", "api_key"),
    "stripe": ("sk_live_" + "a1b2" * 6, "api_key"),
    "stripe restricted": ("rk_live_" + "Z9y8" * 6, "api_key"),
    "telegram bot": ("123456789:" + "AAE" + "x1Y2z3" * 5 + "Ab", "api_key"),
    "taiwan national id": ("A123456789", "national_id"),
    "taiwan national id, female": ("F231104095", "national_id"),
    "taiwan resident certificate": ("A800000014", "national_id"),
    "taiwan resident certificate, female": ("O912345676", "national_id"),
    "taiwan national id, last letter": ("Z298765438", "national_id"),
    "jwt": (JWT, "jwt"),
    "pem": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + "q1W2" * 16 + "\n"
        "-----END RSA PRIVATE KEY-----",
        "private_key",
    ),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_shape_becomes_its_marker_in_place(name: str) -> None:
    secret, kind = SECRETS[name]
    assert redact_text(f"see {secret} here") == f"see [REDACTED:{kind}] here"
    assert redact_text(secret) == f"[REDACTED:{kind}]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", "password=[REDACTED:secret]"),
        ('{"api_key": "abc", "n": 1}', '{"api_key": "[REDACTED:secret]", "n": 1}'),
        ("Authorization: Bearer xyz", "Authorization: Bearer [REDACTED:secret]"),
        ("token: abc", "token: [REDACTED:secret]"),
        (
            "curl -H 'Authorization: Bearer " + "abc123" * 4 + "'",
            "curl -H 'Authorization: Bearer [REDACTED:bearer]'",
        ),
        ("Bearer " + "abc123" * 4, "Bearer [REDACTED:bearer]"),
        ("Bearer " + JWT, "Bearer [REDACTED:jwt]"),
        ("export DB_PASSWORD='p4ss word'", "export DB_PASSWORD='[REDACTED:secret]'"),
        (
            "SLACK_BOT_TOKEN=abc OPENAI_API_KEY=sk-short",
            "SLACK_BOT_TOKEN=[REDACTED:secret] OPENAI_API_KEY=[REDACTED:secret]",
        ),
        ("client secret = s3cr3t, thanks", "client secret = [REDACTED:secret], thanks"),
        ("my api key: abc", "my api key: [REDACTED:secret]"),
        (
            "https://app.example.com/cb?state=xyz&access_token=abc123&x=1",
            "https://app.example.com/cb?state=xyz&access_token=[REDACTED:secret]&x=1",
        ),
        (
            "postgres://admin:s3cret@db.internal:5432/app",
            "postgres://admin:[REDACTED:secret]@db.internal:5432/app",
        ),
        ("cookie => abc; path=/", "cookie => [REDACTED:secret]; path=/"),
        ('secret := "a\\"b"', 'secret := "[REDACTED:secret]"'),
    ],
)
def test_the_value_after_a_sensitive_key_in_text_is_replaced(text: str, expected: str) -> None:
    shown = redact_text(text)
    assert shown == expected
    assert "abc" not in shown
    assert "hunter2" not in shown
    assert "s3cr" not in shown


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 4096, token_count=12, tokenizer: cl100k, total_tokens = 7",
        "Version 1.2.3 shipped on 2024-01-15 at 14:32 UTC; next is v2.0.0-rc.1.",
        "Run 0190f0e0-0000-7000-8000-000000000001 and 12345678-1234-1234-1234-123456789012.",
        "Order #4812 costs €12.50, ticket 1234567890123456 is not a card.",
        "Luhn fails: 4111 1111 1111 1112 and 5555555555554445.",
        "mod-97 fails: DE89 3704 0044 0532 0130 01 and GB82WEST12345698765433.",
        "Local numbers stay: 555-2671, 0800 123 456, +1 555, 2+2=4, x = 5, ratio 3:2.",
        "pi is 3.14159265358979323846 and e is 2.718281828459045235",
        "IPv4 192.168.0.1, 10:30-11:45, sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d",
        "@alice please review; mail me at alice at example dot com",
        "Ask for a task-based approach: risk-assessment-for-the-quarter-and-more, task_live_x.",
        "Authorization is required. The token was revoked. Bearer bonds are old.",
        "emoji 🎉🔥👍🏽 and CJK 今日は良い天気です and Arabic مرحبا بالعالم and Hebrew שלום עולם",
        "key: value and sort_key=name and primary key: id",
        "Ids failing their checksum: A123456788, A800000015; longer: xA123456789, A1234567890.",
        "Not an id: a123456789, A323456789, A12345678, AB12345678.",
        "",
    ],
)
def test_ordinary_text_is_left_intact(text: str) -> None:
    assert redact_text(text) == text


def test_a_private_key_without_its_end_line_is_redacted_to_the_end() -> None:
    pasted = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + "Q9+/" * 20
    assert redact_text(f"here:\n{pasted}\nthanks") == "here:\n[REDACTED:private_key]"


def test_a_message_with_a_card_an_email_and_a_key_shows_none_of_them() -> None:
    key = SECRETS["openai project"][0]
    text = f"Charge 4111 1111 1111 1111, mail bob@example.org the receipt, use {key}."
    shown = redact_text(text)
    assert shown == (
        "Charge [REDACTED:card], mail [REDACTED:email] the receipt, use [REDACTED:api_key]."
    )
    for secret in ("4111", "bob@", "example.org", key):
        assert secret not in shown


def test_a_card_hidden_in_a_longer_run_of_groups_is_still_found() -> None:
    assert redact_text("ref 1234 4111 1111 1111 1111 5678") == "ref 1234 [REDACTED:card] 5678"
    assert redact_text("4111 1111 1111 1111 2024") == "[REDACTED:card] 2024"
    assert redact_text("card4111111111111111x") == "card[REDACTED:card]x"
    # An e-mail pass first would take the last group for a local part and hide the card.
    assert redact_text("4222 2222 2222 2@example.org") == "[REDACTED:card]@example.org"


def test_a_secret_that_only_stands_apart_once_its_neighbour_is_redacted_is_found() -> None:
    key = SECRETS["openai project"][0]
    assert redact_text("4111111111111111" + key) == "[REDACTED:card][REDACTED:api_key]"


def test_the_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert mod97_valid("DE89370400440532013000")
    assert not mod97_valid("DE89370400440532013001")
    assert national_id_valid("A123456789")
    assert national_id_valid("A800000014")
    assert not national_id_valid("A123456788")
    assert not national_id_valid("A800000015")
    assert not national_id_valid("a123456789")
    assert not national_id_valid("A12345678\uff19")  # a full-width digit is no ASCII digit


def test_markers_are_exported_for_leftover_searches() -> None:
    assert MARKER_FORMAT.format(kind="card") == "[REDACTED:card]"
    assert {"card", "iban", "email", "phone", "api_key", "jwt", "private_key", "secret"} <= KINDS
    for kind in KINDS:
        assert MARKER_PATTERN.fullmatch(marker(kind))
    shown = redact_text("a 4111111111111111 b bob@example.org c")
    assert MARKER_PATTERN.findall(shown) == ["[REDACTED:card]", "[REDACTED:email]"]
    assert MARKER_PATTERN.sub("", shown) == "a  b  c"


@pytest.mark.parametrize(
    "key",
    [
        "password", "passwd", "new_password", "DB_PASSWORD", "dbPassword", "passphrase", "pwd",
        "secret", "client_secret", "signing_secret", "clientSecret", "secret_key_base",
        "token", "access_token", "refresh-token", "bot_token", "X-Auth-Token", "id token",
        "api_key", "apiKey", "APIKey", "X-Api-Key", "x_api_key", "apikey", "API Key",
        "access_key", "aws_secret_access_key", "private_key", "privateKey", "signing_key",
        "authorization", "Proxy-Authorization", "cookie", "Set-Cookie", "session",
        "credential", "credentials", "GOOGLE_APPLICATION_CREDENTIALS", "basic_auth",
        "access_tokens", "accesstoken", "refreshToken", "clientsecret", "webhookSecret",
        "API-KEY", "Api_Key", "privatekey", "secretkey", "csrftoken", "session_id",
        "sessionId", "sessionid", "PHPSESSID", "JSESSIONID", "ASP.NET_SessionId", "cvv",
        "card_cvc",
    ],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens", "maxTokens", "token_count", "tokenCount", "total_tokens", "prompt_tokens",
        "completion_tokens", "input_tokens", "tokenizer", "token_type", "tokens_used",
        "key", "keys", "sort_key", "primary_key", "keyboard", "monkey", "session_state",
        "author", "oauth_provider", "name", "description", "secretary", "", "---",
    ],
)  # fmt: skip
def test_keys_that_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)


def test_redact_value_replaces_sensitive_values_of_any_type_and_walks_the_rest() -> None:
    value = {
        "password": {"nested": ["hunter2"]},
        "Authorization": "Bearer xyz",
        "max_tokens": 4096,
        "token_count": 12,
        "card": 4111111111111111,
        "order": 1234567890123456,
        "ok": True,
        "ratio": 0.5,
        "none": None,
        "items": ({"apiKey": 42, "note": "mail bob@example.org"}, "token: abc"),
    }
    before = copy.deepcopy(value)
    assert redact_value(value) == {
        "password": "[REDACTED:secret]",
        "Authorization": "[REDACTED:secret]",
        "max_tokens": 4096,
        "token_count": 12,
        "card": "[REDACTED:card]",
        "order": 1234567890123456,
        "ok": True,
        "ratio": 0.5,
        "none": None,
        "items": [
            {"apiKey": "[REDACTED:secret]", "note": "mail [REDACTED:email]"},
            "token: [REDACTED:secret]",
        ],
    }
    assert value == before


def test_keys_are_redacted_too_and_stay_distinct() -> None:
    value = {"a@example.org": 1, "b@example.org": 2, "plain": 3}
    assert redact_value(value) == {"[REDACTED:email]": 1, "[REDACTED:email]#2": 2, "plain": 3}


def test_a_value_over_the_limit_becomes_its_truncated_json_text() -> None:
    value = {"note": "x" * 200, "token": "abc"}
    encoded = '{"note":"' + "x" * 200 + '","token":"[REDACTED:secret]"}'
    room = MIN_LIMIT - len(truncation_marker(len(encoded)).encode())
    shown = redact_value(value, limit=MIN_LIMIT)
    assert shown == encoded[:room] + f"…[truncated {len(encoded) - room} bytes]"
    assert isinstance(shown, str)
    assert len(shown.encode()) <= MIN_LIMIT
    assert redact_value({"n": 1}, limit=MIN_LIMIT) == {"n": 1}


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object(), {1: "int key"}])
def test_redact_value_refuses_what_json_does_not_have(value: object) -> None:
    with pytest.raises(TypeError, match="cannot redact"):
        redact_value(value)


def test_a_limit_too_small_for_the_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 64"):
        redact_text("x", limit=MIN_LIMIT - 1)
    with pytest.raises(ValueError, match="at least 64"):
        redact_value("x", limit=10)


def test_truncation_keeps_whole_characters_and_ends_with_the_marker() -> None:
    text = "🎉" * 40  # 160 bytes; the marker for 160 takes 24, leaving room for 19 emoji
    shown = redact_text(text, limit=100)
    assert shown == "🎉" * 19 + "…[truncated 84 bytes]"
    assert len(shown.encode()) == 99
    assert MAX_DISPLAY_BYTES - 1 <= len(redact_text("a" * 100_000).encode()) <= MAX_DISPLAY_BYTES
    assert redact_text("a" * 100) == "a" * 100


def test_truncation_never_cuts_a_marker_nor_leaves_a_key_without_its_value() -> None:
    # Redacted, this is 108 bytes; the cut at 56 falls inside the marker, and
    # "password=" left alone would read as a key whose value is the truncation marker.
    shown = redact_text("x" * 40 + " password=hunter2 " + "y" * 40, limit=80)
    assert shown == "x" * 40 + " …[truncated 67 bytes]"
    assert redact_text(shown, limit=80) == shown
    shown = redact_text("x" * 50 + " 4111111111111111 " + "z" * 50, limit=80)
    assert shown == "x" * 50 + " …[truncated 66 bytes]"


def test_a_digit_run_cut_short_is_not_left_to_look_like_a_card() -> None:
    # 24 digits are no card, but with a limit of 87 bytes the cut would keep exactly the
    # first 16, a Luhn-valid card number: the cut moves back before them.
    text = "n" * 46 + " " + "4111111111111111" + "12345678" + " tail" * 20
    assert redact_text(text) == text
    shown = redact_text(text, limit=87)
    assert shown == "n" * 46 + " …[truncated 124 bytes]"
    assert redact_text(shown, limit=87) == shown


def test_lone_surrogates_become_replacement_characters() -> None:
    assert redact_text("a\ud800b") == "a\ufffdb"
    assert redact_value({"k\udc80": "\udfff"}) == {"k\ufffd": "\ufffd"}


@pytest.mark.parametrize(
    "text",
    [
        "1" * 16_000,
        "1 " * 8_000,
        "1234 " * 3_000 + "1234567",
        "a@" * 8_000,
        "token:" * 3_000,
        "password=" * 2_000,
        "+1 " * 5_000,
        "-----BEGIN PRIVATE KEY-----" * 500,
        "sk-" * 5_000,
        "eyJ." * 4_000,
        "A" * 16_000,
    ],
)
def test_adversarial_inputs_finish_within_the_limit(text: str) -> None:
    shown = redact_text(text)
    assert len(shown.encode()) <= MAX_DISPLAY_BYTES
    assert redact_text(shown) == shown


# Properties.

no_digit_text = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=60)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid number of 13 to 19 digits, written as people write cards."""
    length = draw(st.integers(13, 19))
    payload = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    digits = _luhn_completed(payload)
    styles = ["plain", "fours", "amex"] if length <= 16 else ["plain", "fours"]
    style = draw(st.sampled_from(styles))
    if style == "plain":
        return digits
    separator = draw(st.sampled_from(" -"))
    sizes = [4, 6, length - 10] if style == "amex" else [4] * (length // 4) + [length % 4]
    groups, start = [], 0
    for size in filter(None, sizes):
        groups.append(digits[start : start + size])
        start += size
    return separator.join(groups)


@settings(max_examples=400, deadline=None)
@given(no_digit_text, card_numbers(), no_digit_text)
def test_a_luhn_valid_card_between_digitless_text_never_survives(
    before: str, card: str, after: str
) -> None:
    shown = redact_text(before + card + after)
    assert not any(char in "0123456789" for char in shown)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(MIN_LIMIT, 300))
def test_output_is_valid_utf8_within_the_limit(text: str, limit: int) -> None:
    shown = redact_text(text, limit=limit)
    assert len(shown.encode("utf-8")) <= limit


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="@:=\x00"),
        max_size=500,
    )
)
def test_text_without_digits_at_signs_colons_or_equals_is_unchanged(text: str) -> None:
    assert redact_text(text) == text


FRAGMENTS = [
    *(secret for secret, _ in SECRETS.values()),
    "password=", "token: ", '"api_key": "', "Bearer ", "://u:", "@", "+", "+1 ", "4111",
    "1111 ", "-", "_", ":", "=", " ", "\n", ",", ".", "'", '"', "[REDACTED:card]", "XX",
    "DE89", "…[truncated 5 bytes]", "ab", "sk-", "eyJ", "x", "🎉", "日本",
]  # fmt: skip
fragment_text = st.lists(
    st.sampled_from(FRAGMENTS) | st.text("0123456789 -+:=@.abXY_", max_size=8), max_size=25
).map("".join)


@settings(max_examples=500, deadline=None)
@given(fragment_text)
def test_redacting_twice_changes_nothing(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@settings(max_examples=300, deadline=None)
@given(fragment_text, st.integers(MIN_LIMIT, 200))
def test_redacting_twice_changes_nothing_even_when_truncated(text: str, limit: int) -> None:
    once = redact_text(text, limit=limit)
    assert len(once.encode()) <= limit
    assert redact_text(once, limit=limit) == once


SENSITIVE_KEYS = ["password", "api_key", "Authorization", "client_secret", "X-Api-Key",
                  "accessToken", "session", "bot_token", "Cookie", "credentials"]  # fmt: skip
PLAIN_KEYS = ["max_tokens", "token_count", "name", "items", "note", "id"]
secret_values = st.uuids().map(lambda uuid: f"s3cr3t-{uuid.hex}")


def _nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(PLAIN_KEYS), children, max_size=3)
        | st.dictionaries(
            st.sampled_from(SENSITIVE_KEYS),
            secret_values | st.lists(secret_values, max_size=2) | children,
            max_size=2,
        )
    )


plain_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text("abc xyz", max_size=10),
    _nested,
    max_leaves=12,
)


def _assert_sensitive_values_replaced(original: Any, shown: Any) -> None:
    if isinstance(original, dict):
        assert set(shown) == set(original)
        for key, item in original.items():
            if is_sensitive_key(key):
                assert shown[key] == "[REDACTED:secret]"
            else:
                _assert_sensitive_values_replaced(item, shown[key])
    elif isinstance(original, list):
        for item, shown_item in zip(original, shown, strict=True):
            _assert_sensitive_values_replaced(item, shown_item)
    else:
        assert shown == original


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_redact_value_never_returns_a_sensitive_value_at_any_depth(value: Any) -> None:
    before = copy.deepcopy(value)
    shown = redact_value(value)
    assert value == before
    _assert_sensitive_values_replaced(value, shown)
    assert "s3cr3t-" not in json.dumps(shown)


@settings(max_examples=200, deadline=None)
@given(plain_values, st.integers(MIN_LIMIT, 200))
def test_redact_value_is_bounded_by_truncating_its_json_text(value: Any, limit: int) -> None:
    whole = redact_value(value, limit=10**9)
    encoded = json.dumps(whole, ensure_ascii=False, separators=(",", ":"))
    shown = redact_value(value, limit=limit)
    if len(encoded.encode()) <= limit:
        assert shown == whole
    else:
        assert isinstance(shown, str)
        assert len(shown.encode()) <= limit
        head, _, tail = shown.rpartition("…[truncated ")
        assert encoded.startswith(head)
        assert tail == f"{len(encoded.encode()) - len(head.encode())} bytes]"
    assert "s3cr3t-" not in json.dumps(shown)


def test_nul_becomes_the_replacement_character_so_postgres_can_store_it() -> None:
    assert redact_text("before\x00after") == "before\ufffdafter"

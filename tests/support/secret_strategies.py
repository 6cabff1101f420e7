"""Secrets of every kind the redactor knows, generated as valid instances, for tests.

Luhn-valid card numbers, checksum-valid Taiwanese ids, AWS key ids, JWTs, PEM private
keys, bearer tokens, passwords in URLs, e-mail addresses and international phone
numbers, each a `Planted` that names what must never survive redaction; decoys (one
digit off their checksum) that must. The checksums are written here from their
definitions rather than taken from the code under test.
"""

from __future__ import annotations

import base64
import json
import re
import string
from dataclasses import dataclass

from hypothesis import strategies as st

# Checksums, written from their definitions rather than taken from the code under test.


def _luhn_sum(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        doubled = int(char) * (2 if position % 2 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10


def luhn_check_digit(payload: str) -> str:
    return str((10 - _luhn_sum(payload + "0")) % 10)


TW_LETTERS = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip


def tw_check_digit(letter: str, eight_digits: str) -> str:
    tens, units = divmod(TW_LETTERS[letter], 10)
    total = (
        tens
        + 9 * units
        + sum(w * int(d) for w, d in zip(range(8, 0, -1), eight_digits, strict=True))
    )
    return str(-total % 10)


# Planted secrets and decoys.


@dataclass(frozen=True)
class Planted:
    """A secret of `kind`, as written (`text`); none of `hidden` may survive redaction."""

    kind: str
    text: str
    hidden: tuple[str, ...]


def _planted(kind: str, text: str, *hidden: str) -> Planted:
    return Planted(kind, text, (text, *hidden))


DIGITS = st.text("0123456789", min_size=1, max_size=1)
BASE62 = string.ascii_letters + string.digits


def digit_strings(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=size, max_size=size)


def _group(digits: str, sizes: list[int], separator: str) -> str:
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    return separator.join(group for group in groups if group)


@st.composite
def _card_layouts(draw: st.DrawFn, digits: str) -> str:
    """`digits` written as people write cards: run together, in fours, or 4-6-5 (Amex)."""
    length = len(digits)
    style = draw(
        st.sampled_from(["plain", "fours", "amex"] if length == 15 else ["plain", "fours"])
    )
    if style == "plain":
        return digits
    separator = draw(st.sampled_from(" -"))
    sizes = [4, 6, 5] if style == "amex" else [4] * (length // 4) + [length % 4]
    return _group(digits, sizes, separator)


@st.composite
def cards(draw: st.DrawFn) -> Planted:
    length = draw(st.integers(13, 19))
    payload = draw(digit_strings(length - 1))
    digits = payload + luhn_check_digit(payload)
    return _planted("card", draw(_card_layouts(digits)), digits)


def _no_run_of_groups_is_a_card(written: str) -> bool:
    # Redaction tries every run of up to six neighbouring groups, so a decoy must fail all.
    groups = re.split("[ -]", written)
    return not any(
        13 <= len(run := "".join(groups[start:end])) <= 19 and _luhn_sum(run) == 0
        for start in range(len(groups))
        for end in range(start + 1, min(len(groups), start + 6) + 1)
    )


@st.composite
def decoy_cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    payload = draw(digit_strings(length - 1))
    wrong = (int(luhn_check_digit(payload)) + draw(st.integers(1, 9))) % 10
    written = draw(_card_layouts(payload + str(wrong)))
    return written if _no_run_of_groups_is_a_card(written) else payload[:8]


@st.composite
def _tw_id_parts(draw: st.DrawFn) -> tuple[str, str]:
    letter = draw(st.sampled_from(sorted(TW_LETTERS)))
    eight = draw(st.sampled_from("1289")) + draw(digit_strings(7))
    return letter, eight


@st.composite
def national_ids(draw: st.DrawFn) -> Planted:
    letter, eight = draw(_tw_id_parts())
    return _planted("national_id", letter + eight + tw_check_digit(letter, eight))


@st.composite
def decoy_national_ids(draw: st.DrawFn) -> str:
    letter, eight = draw(_tw_id_parts())
    wrong = (int(tw_check_digit(letter, eight)) + draw(st.integers(1, 9))) % 10
    return f"{letter}{eight}{wrong}"


aws_key_ids = st.builds(
    lambda prefix, rest: _planted("api_key", prefix + rest),
    st.sampled_from(["AKIA", "ASIA"]),
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16),
)


def _b64(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


jwts = st.builds(
    lambda alg, subject, signature: _planted(
        "jwt",
        ".".join(
            [
                _b64(json.dumps({"alg": alg, "typ": "JWT"})),
                _b64(json.dumps({"sub": subject})),
                signature,
            ]
        ),
    ),
    st.sampled_from(["HS256", "RS256", "ES384", "none"]),
    st.text(max_size=20),
    st.text(string.ascii_letters + string.digits + "-_", min_size=16, max_size=60),
)


@st.composite
def private_keys(draw: st.DrawFn) -> Planted:
    label = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "]))
    lines = draw(
        st.lists(
            st.text(string.ascii_letters + string.digits + "+/", min_size=8, max_size=64),
            min_size=1,
            max_size=4,
        )
    )
    # Never a drawn string as it is: hypothesis may draw that string again elsewhere (as a
    # key, say), where it rightly stays.
    body = "MIIE" + "\n".join(lines)
    pem = f"-----BEGIN {label}PRIVATE KEY-----\n{body}\n-----END {label}PRIVATE KEY-----"
    return _planted("private_key", pem, body)


@st.composite
def bearer_tokens(draw: st.DrawFn) -> Planted:
    before = draw(st.text(BASE62 + "~+/", max_size=20))
    after = draw(st.text(BASE62 + "~+/", max_size=20))
    token = before + draw(DIGITS) + after
    token = token if len(token) >= 8 else token + "0a1b2c3d"
    prefix = draw(st.sampled_from(["Bearer ", "Authorization: Bearer "]))
    return Planted("bearer", prefix + token, (token,))


# Filler spelt without c, d, e, i, k, p, s, t, v or w: no sensitive word (token, secret,
# password, cookie, auth, session, pwd, cvv, …) and no shape's literal (Bearer, eyJ, sk-,
# AKIA, AIza, …) can be made of it, so every marker in the output comes from a plant.
SAFE_LOWER = "abfghjlmnoqruxyz"
SAFE_LETTERS = SAFE_LOWER + SAFE_LOWER.upper() + "éøß日本ж"
safe_words = st.text(SAFE_LETTERS, min_size=1, max_size=8)
safe_names = st.text(SAFE_LOWER, min_size=1, max_size=8)


@st.composite
def url_passwords(draw: st.DrawFn) -> Planted:
    scheme = draw(st.sampled_from(["postgres", "https", "redis", "amqp", "mongodb+srv"]))
    user = draw(safe_names)
    password = draw(st.text(SAFE_LOWER + string.digits + "!$*~._:", min_size=4, max_size=20))
    password = draw(DIGITS) + password + draw(st.sampled_from("XYZ"))
    host = draw(safe_names) + draw(st.sampled_from([".internal", ".example.com", ":5432"]))
    return Planted("secret", f"{scheme}://{user}:{password}@{host}/", (password,))


emails = st.builds(
    lambda local, tag, domain, tld: _planted("email", f"{local}{tag}@{domain}.{tld}"),
    safe_names,
    st.sampled_from(["", ".ops", "+alerts", "-x"]),
    safe_names,
    st.sampled_from(["com", "org", "io", "co.uk", "travel"]),
)


@st.composite
def phones(draw: st.DrawFn) -> Planted:
    country = str(draw(st.integers(1, 999)))
    rest = draw(digit_strings(draw(st.integers(max(0, 8 - len(country)), 15 - len(country)))))
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "area"]))
    if style == "plain" or len(rest) < 4:
        return _planted("phone", f"+{country}{rest}")
    if style == "area":
        return _planted("phone", f"+{country} ({rest[:3]}) {rest[3:]}")
    return _planted(
        "phone", f"+{country} " + _group(rest, [3, 3, 4, 5], " " if style == "spaced" else "-")
    )


secrets = st.one_of(
    cards(),
    national_ids(),
    aws_key_ids,
    jwts,
    private_keys(),
    bearer_tokens(),
    url_passwords(),
    emails,
    phones(),
)


@dataclass(frozen=True)
class PlantedDocument:
    """A JSON object with secrets planted at any depth, and every text none may leave."""

    document: dict[str, object]
    hidden: tuple[str, ...]


SENSITIVE_KEYS = ("password", "api_key", "token", "authorization", "cookie", "client_secret")


@st.composite
def planted_documents(draw: st.DrawFn, max_depth: int = 4) -> PlantedDocument:
    """An object of filler and planted secrets: in running text, as whole values, and as
    values (secret or not) of sensitive keys, nested up to `max_depth` deep."""
    hidden: list[str] = []

    def value(depth: int) -> object:
        choice = draw(st.integers(0, 5 if depth < max_depth else 2))
        if choice == 0:
            return " ".join(draw(st.lists(safe_words, min_size=1, max_size=3)))
        if choice in (1, 2):
            secret = draw(secrets)
            hidden.extend(secret.hidden)
            around = draw(st.sampled_from(["{}", "see {} now", "{}, then", "[{}]"]))
            return around.format(secret.text)
        if choice == 3:
            return [value(depth + 1) for _ in range(draw(st.integers(1, 3)))]
        return node(depth + 1)

    def node(depth: int) -> dict[str, object]:
        found: dict[str, object] = {}
        for _ in range(draw(st.integers(1, 3))):
            found[draw(safe_names)] = value(depth)
        if draw(st.booleans()):
            key = draw(st.sampled_from(SENSITIVE_KEYS))
            plain = draw(st.text(SAFE_LOWER + string.digits, min_size=6, max_size=16))
            found[key] = "k" + plain  # a value only its key gives away
            hidden.append("k" + plain)
        return found

    document = node(1)
    first = draw(secrets)  # at least one, whatever else was drawn
    document[draw(safe_names) + "_x"] = first.text
    hidden.extend(first.hidden)
    return PlantedDocument(document, tuple(hidden))

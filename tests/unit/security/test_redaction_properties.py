"""Redaction properties over generated JSON values with secrets of every kind planted in them.

Every planted secret is a valid instance generated here: Luhn-valid card numbers,
checksum-valid Taiwanese ids, AWS key ids, JWTs, PEM private keys, bearer tokens,
passwords in URLs, e-mail addresses, international phone numbers. They go into string
values, whole values, dict keys and values under sensitive keys, at any depth. Decoys
(a card number one digit off its Luhn check, an id one digit off its checksum) go in
beside them and must come out untouched.

Two kinds of filler: one spelt from letters no sensitive word or shape can be made of,
where the counts are known exactly; and arbitrary text, where only what can be promised
whatever surrounds a secret is asserted (it never survives, and it is counted under its
kind unless a sensitive key in the text took it whole).
"""

from __future__ import annotations

import base64
import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.security.redaction import (
    KINDS,
    MARKER_PATTERN,
    MAX_DISPLAY_BYTES,
    MIN_LIMIT,
    TRUNCATED,
    Redacted,
    is_sensitive_key,
    redact_counted,
    redact_value,
)

pytestmark = pytest.mark.unit

TRUNCATION_END = re.compile(r"…\[truncated [0-9]+ bytes\]\Z")


# Checksums, written from their definitions rather than taken from the code under test.


def _luhn_sum(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        doubled = int(char) * (2 if position % 2 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10


def _luhn_check_digit(payload: str) -> str:
    return str((10 - _luhn_sum(payload + "0")) % 10)


TW_LETTERS = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip


def _tw_check_digit(letter: str, eight_digits: str) -> str:
    tens, units = divmod(TW_LETTERS[letter], 10)
    total = (
        tens
        + 9 * units
        + sum(w * int(d) for w, d in zip(range(8, 0, -1), eight_digits, strict=True))
    )
    return str(-total % 10)


def test_the_checksums_written_here_agree_with_known_numbers() -> None:
    assert _luhn_check_digit("411111111111111") == "1"
    assert _luhn_check_digit("37828224631000") == "5"
    assert _tw_check_digit("A", "12345678") == "9"  # A123456789
    assert _tw_check_digit("A", "80000001") == "4"  # A800000014, a resident certificate


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


def _digits(size: int) -> st.SearchStrategy[str]:
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
    payload = draw(_digits(length - 1))
    digits = payload + _luhn_check_digit(payload)
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
    payload = draw(_digits(length - 1))
    wrong = (int(_luhn_check_digit(payload)) + draw(st.integers(1, 9))) % 10
    written = draw(_card_layouts(payload + str(wrong)))
    return written if _no_run_of_groups_is_a_card(written) else payload[:8]


@st.composite
def _tw_id_parts(draw: st.DrawFn) -> tuple[str, str]:
    letter = draw(st.sampled_from(sorted(TW_LETTERS)))
    eight = draw(st.sampled_from("1289")) + draw(_digits(7))
    return letter, eight


@st.composite
def national_ids(draw: st.DrawFn) -> Planted:
    letter, eight = draw(_tw_id_parts())
    return _planted("national_id", letter + eight + _tw_check_digit(letter, eight))


@st.composite
def decoy_national_ids(draw: st.DrawFn) -> str:
    letter, eight = draw(_tw_id_parts())
    wrong = (int(_tw_check_digit(letter, eight)) + draw(st.integers(1, 9))) % 10
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
    rest = draw(_digits(draw(st.integers(max(0, 8 - len(country)), 15 - len(country)))))
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


# Generated JSON: nodes that remember what was planted where.


@dataclass(frozen=True)
class Text:
    """A string made of filler, planted secrets and decoys, joined by separators."""

    text: str
    planted: tuple[Planted, ...] = ()
    decoys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CardInt:
    """A card number (or decoy) written as a JSON number."""

    number: int
    planted: Planted | None


@dataclass(frozen=True)
class Branch:
    items: tuple[tuple[Text | None, Any], ...]  # a None key: a list item


@dataclass
class Expected:
    counts: Counter[str] = field(default_factory=Counter)
    planted: list[Planted] = field(default_factory=list)
    decoys: list[str] = field(default_factory=list)  # left where nothing hides them


def texts(
    filler: st.SearchStrategy[str], separators: st.SearchStrategy[str]
) -> st.SearchStrategy[Text]:
    piece = st.one_of(
        filler.map(lambda words: Text(words)),
        secrets.map(lambda secret: Text(secret.text, (secret,))),
        decoy_cards().map(lambda decoy: Text(decoy, decoys=(decoy,))),
        decoy_national_ids().map(lambda decoy: Text(decoy, decoys=(decoy,))),
    )

    @st.composite
    def joined(draw: st.DrawFn) -> Text:
        pieces = draw(st.lists(piece, min_size=1, max_size=5))
        text = pieces[0].text
        for following in pieces[1:]:
            text += draw(separators) + following.text
        return Text(
            text,
            tuple(secret for part in pieces for secret in part.planted),
            tuple(decoy for part in pieces for decoy in part.decoys),
        )

    return joined()


@st.composite
def card_ints(draw: st.DrawFn) -> CardInt:
    length = draw(st.integers(13, 19))
    payload = draw(st.sampled_from("123456789")) + draw(_digits(length - 2))
    check = _luhn_check_digit(payload)
    if draw(st.booleans()):
        return CardInt(int(payload + check), Planted("card", payload + check, (payload + check,)))
    wrong = str((int(check) + draw(st.integers(1, 9))) % 10)
    return CardInt(int(payload + wrong), None)


SENSITIVE_KEYS = [
    "password", "Passwd", "secret", "client_secret", "token", "access_token", "refreshToken",
    "api_key", "apiKey", "API-KEY", "apikey", "Authorization", "cookie", "Set-Cookie",
    "private_key", "session", "session_id", "X-Auth-Token", "db-password",
]  # fmt: skip


def json_nodes(
    filler: st.SearchStrategy[str],
    separators: st.SearchStrategy[str],
    keys: st.SearchStrategy[Text],
) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        texts(filler, separators),
        card_ints(),
        st.none() | st.booleans() | st.integers(-1000, 1000) | st.sampled_from([0.5, -2.25]),
    )

    def branches(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Branch]:
        key = keys | st.sampled_from(SENSITIVE_KEYS).map(Text)
        return st.one_of(
            st.lists(children, max_size=4).map(
                lambda items: Branch(tuple((None, i) for i in items))
            ),
            st.lists(st.tuples(key, children), max_size=4).map(lambda items: Branch(tuple(items))),
        )

    return st.recursive(leaves, branches, max_leaves=20)


def _render(node: Any, expected: Expected, hidden: bool) -> Any:
    """The JSON value of `node`; `hidden`: under a sensitive key, so replaced whole."""
    if isinstance(node, Text):
        expected.planted += node.planted
        if not hidden:
            expected.counts.update(secret.kind for secret in node.planted)
            expected.decoys += node.decoys
        return node.text
    if isinstance(node, CardInt):
        if node.planted is not None:
            expected.planted.append(node.planted)
            if not hidden:
                expected.counts["card"] += 1
        elif not hidden:
            expected.decoys.append(str(node.number))
        return node.number
    if isinstance(node, Branch):
        if all(key is None for key, _ in node.items) or not node.items:
            return [_render(child, expected, hidden) for _, child in node.items]
        rendered: dict[str, Any] = {}
        for key, child in node.items:
            assert key is not None
            if key.text in rendered:
                continue
            _render(key, expected, hidden)
            sensitive = is_sensitive_key(key.text)
            if sensitive and not hidden:
                expected.counts["secret"] += 1
            rendered[key.text] = _render(child, expected, hidden or sensitive)
        return rendered
    return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [str(value)]


def _assert_nothing_planted_survives(shown: Any, expected: Expected) -> None:
    # Decoys come out whole and could contain a planted number's digits: look past them.
    everything = "\x1f".join(_strings(shown))
    dumped = json.dumps(shown)
    for decoy in sorted(set(expected.decoys), key=len, reverse=True):
        everything = everything.replace(decoy, "\x1f")
        dumped = dumped.replace(decoy, "\x1f")
    for secret in expected.planted:
        for text in secret.hidden:
            assert text not in everything, (secret.kind, text)
            assert json.dumps(text)[1:-1] not in dumped, (secret.kind, text)


def _assert_bounded(value: Any, limit: int, result: Redacted) -> bool:
    """Checks the size contract and how counts are shaped; whether the value was over the
    limit (and so became its JSON text)."""
    assert result.counts == dict(sorted(result.counts.items()))
    assert all(count >= 1 for count in result.counts.values())
    assert set(result.counts) <= KINDS | {TRUNCATED}
    whole = redact_value(value, limit=10**9)
    if len(json.dumps(whole, ensure_ascii=False, separators=(",", ":")).encode()) <= limit:
        assert result.value == whole
        assert TRUNCATED not in result.counts
        return False
    # Over the limit: the JSON text, redacted again (which may shrink it) and cut to fit.
    assert isinstance(result.value, str)
    assert len(result.value.encode()) <= limit
    truncated = TRUNCATION_END.search(result.value) is not None
    assert result.counts.get(TRUNCATED, 0) == int(truncated)
    return True


limits = st.one_of(st.just(MAX_DISPLAY_BYTES), st.integers(MIN_LIMIT, 300))
safe_filler = st.lists(safe_words, min_size=1, max_size=4).map(" ".join)
safe_separators = st.sampled_from([", ", "\n", " | ", "; "])
safe_keys = texts(safe_filler, safe_separators) | safe_filler.map(Text)


@settings(max_examples=150, deadline=None)
@given(json_nodes(safe_filler, safe_separators, safe_keys), limits)
def test_every_planted_secret_is_replaced_and_counted_under_its_kind(node: Any, limit: int) -> None:
    expected = Expected()
    value = _render(node, expected, hidden=False)
    result = redact_counted(value, limit=limit)

    assert result.value == redact_value(value, limit=limit)
    _assert_nothing_planted_survives(result.value, expected)
    over_limit = _assert_bounded(value, limit, result)
    counts = {kind: count for kind, count in result.counts.items() if kind != TRUNCATED}
    if over_limit:
        # The JSON text is redacted again before the cut, and there a sensitive key's value
        # may run on past an escaped newline ("Bearer [REDACTED:bearer]\\nfiller" becomes
        # "Bearer [REDACTED:secret]"): only secrets can be added, and they count.
        assert counts.pop("secret", 0) >= expected.counts["secret"]
        assert counts == {kind: n for kind, n in expected.counts.items() if kind != "secret"}
    else:
        # Exactly: a decoy is never counted, a secret under a sensitive key counts as that
        # key's, and each marker in the output is one count.
        assert counts == dict(expected.counts)
        shown = "\x1f".join(_strings(result.value))
        for decoy in expected.decoys:
            assert decoy in shown
        markers = Counter(found[len("[REDACTED:") : -1] for found in MARKER_PATTERN.findall(shown))
        assert counts == dict(markers)


arbitrary_separators = st.sampled_from([", ", "\n", " | ", ". "])
arbitrary_keys = texts(st.text(max_size=12), arbitrary_separators) | st.text(max_size=12).map(Text)


@settings(max_examples=150, deadline=None)
@given(json_nodes(st.text(max_size=20), arbitrary_separators, arbitrary_keys), limits)
def test_no_planted_secret_survives_whatever_text_surrounds_it(node: Any, limit: int) -> None:
    expected = Expected()
    value = _render(node, expected, hidden=False)
    result = redact_counted(value, limit=limit)

    assert result.value == redact_value(value, limit=limit)
    _assert_nothing_planted_survives(result.value, expected)
    _assert_bounded(value, limit, result)
    # Text such as 'password="' before a secret may take it into a secret of its own.
    taken = result.counts.get("secret", 0)
    for kind, planted in expected.counts.items():
        assert result.counts.get(kind, 0) + taken >= planted, kind


@settings(max_examples=100, deadline=None)
@given(json_nodes(st.text(max_size=20), arbitrary_separators, arbitrary_keys))
def test_counting_redacted_output_again_counts_nothing(node: Any) -> None:
    once = redact_counted(_render(node, Expected(), hidden=False), limit=10**9)
    again = redact_counted(once.value, limit=10**9)
    assert again.value == once.value
    assert again.counts == {}

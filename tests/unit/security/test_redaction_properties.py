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

import json
import re
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
from support.secret_strategies import (
    Planted,
    decoy_cards,
    decoy_national_ids,
    digit_strings,
    luhn_check_digit,
    safe_words,
    secrets,
    tw_check_digit,
)

pytestmark = pytest.mark.unit

TRUNCATION_END = re.compile(r"…\[truncated [0-9]+ bytes\]\Z")


def test_the_checksums_written_here_agree_with_known_numbers() -> None:
    assert luhn_check_digit("411111111111111") == "1"
    assert luhn_check_digit("37828224631000") == "5"
    assert tw_check_digit("A", "12345678") == "9"  # A123456789
    assert tw_check_digit("A", "80000001") == "4"  # A800000014, a resident certificate


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
    payload = draw(st.sampled_from("123456789")) + draw(digit_strings(length - 2))
    check = luhn_check_digit(payload)
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

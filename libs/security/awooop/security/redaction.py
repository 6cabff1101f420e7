"""Redaction of secrets and personal data from chat text and JSON-like tool data.

Layer 1 (:mod:`awooop.security.redaction_patterns`) replaces what is known by
its shape: card numbers, IBANs, e-mail addresses, phone numbers, Taiwanese
national ids, API keys, JWTs, bearer tokens, passwords in URLs, PEM private
keys. Layer 2 replaces whatever is stored under a sensitive key
(:func:`is_sensitive_key`): dict entries in :func:`redact_value`, and
``key=value``, ``key: value`` or ``"key": "value"`` inside text. Each
redaction reads ``[REDACTED:<kind>]`` (:data:`MARKER_FORMAT`); the result is
then bounded to a byte budget. Redacting redacted output changes nothing.
:func:`redact_counted` and :func:`redact_text_counted` also say how many
values of each kind were replaced, never which.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from awooop.security.redaction_patterns import (
    KINDS,
    MARKER_FORMAT,
    MARKER_PATTERN,
    marker,
    redact_shapes,
)

__all__ = [
    "KINDS",
    "MARKER_FORMAT",
    "MARKER_PATTERN",
    "MAX_DISPLAY_BYTES",
    "MIN_LIMIT",
    "TRUNCATED",
    "Redacted",
    "is_sensitive_key",
    "marker",
    "redact_counted",
    "redact_text",
    "redact_text_counted",
    "redact_value",
    "truncation_marker",
]

MAX_DISPLAY_BYTES = 16 * 1024
"""The default budget, in UTF-8 bytes, of what a read model or a log line shows."""

MIN_LIMIT = 64
"""The smallest `limit` accepted: room for the truncation marker and some text."""

TRUNCATED = "truncated"
"""The key of :attr:`Redacted.counts` that says the output was truncated."""

# Inside any word: dbpassword, PHPSESSID, JSESSIONID.
_HINTS = ("password", "passwd", "passphrase", "sessid", "sessionid")
_SECRET_WORDS = frozenset(
    {"credential", "credentials", "authorization", "cookie", "cookies", "pwd"}
    | {"cvv", "cvc", "cvv2", "cvc2"}
)
_SECRET_ENDINGS = ("secret", "secrets")  # secret, client_secret, clientsecret, but not secretary
_LAST_WORDS = frozenset({"token", "session", "auth"})
_QUALIFIERS = frozenset(
    {"api", "access", "private", "secret", "signing", "encryption", "master", "client", "ssh"}
    | {"session", "auth", "refresh", "bot", "bearer", "oauth"}
)
_QUALIFIED = frozenset({"key", "keys", "tokens"})
# The same pairs written as one word: apikey, privatekey, accesstokens, sessionkey.
_COMPOUNDS = frozenset(first + second for first in _QUALIFIERS for second in _QUALIFIED)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_KEY_REVERSED = re.compile(r"""[ \t]*["']?([A-Za-z0-9_.-]++(?: [A-Za-z0-9_.-]++)?)""")
_VALUE = re.compile(
    r"""[ \t]*+(?:(?i:bearer|basic|token|bot|digest)[ \t]++)?"""
    r"""(?:"((?:[^"\\\n]|\\.)*+)"|'([^'\n]*+)'|["']?((?:[^\s"'&,;]|[,;](?=\S))++))"""
)
_SECRET = marker("secret")
_TRUNCATION_TRIES = 16
_ROUNDS = 8
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether a value stored under `key` is a secret, whatever the value looks like.

    The key is split into lower-case words at ``-``, ``_``, spaces, dots and
    camelCase humps. It is sensitive when a word contains password, passwd,
    passphrase, sessid or sessionid; a word is or ends with secret(s), or is
    credential(s), authorization, cookie(s), pwd, cvv or cvc; the *last* word is
    or ends with token, or is session or auth; session comes right before id or
    ids; or a qualifier (api, access, private, secret, signing, client, refresh,
    session, bot, …) comes right before key, keys or tokens, or is joined to
    them in one word. So ``access_token``, ``accesstoken``, ``X-Api-Key``,
    ``Set-Cookie``, ``session_id``, ``clientSecret`` and ``clientsecret`` are
    sensitive; ``max_tokens``, ``token_count``, ``secretary`` and a bare ``key``
    are not. A marker in the key reads as one neutral word.
    """
    if "[REDACTED:" in key:
        # A marker in a redacted key stands for a value, not for words of the key: read
        # as one neutral word, the key is as sensitive as it was before redaction.
        key = MARKER_PATTERN.sub(" redacted ", key)
    words = [word for word in _NOT_ALNUM.split(_CAMEL_HUMP.sub("_", key).lower()) if word]
    if not words:
        return False
    last = words[-1]
    if last in _LAST_WORDS or last.endswith("token") or not _SECRET_WORDS.isdisjoint(words):
        return True
    if any(word.endswith(_SECRET_ENDINGS) or word in _COMPOUNDS for word in words):
        return True
    if any(hint in word for word in words for hint in _HINTS):
        return True
    return any(
        (first in _QUALIFIERS and second in _QUALIFIED)
        or (first == "session" and second in ("id", "ids"))
        for first, second in itertools.pairwise(words)
    )


@dataclass(frozen=True, slots=True)
class Redacted:
    """What :func:`redact_counted` or :func:`redact_text_counted` returns.

    `value` is exactly what :func:`redact_value` (or :func:`redact_text`) returns
    for the same arguments. `counts` maps a kind (:data:`KINDS`) to how many
    markers of that kind the redaction put in, one per value replaced, counted
    before truncation; :data:`TRUNCATED` maps to 1 when the output was
    truncated. Only counts of at least 1 appear, sorted by kind; never a value.
    """

    value: object
    counts: dict[str, int]


def truncation_marker(dropped: int) -> str:
    """The end of truncated text: ``…[truncated N bytes]``, N the UTF-8 bytes left out."""
    return f"…[truncated {dropped} bytes]"


def redact_text(text: str, *, limit: int = MAX_DISPLAY_BYTES) -> str:
    """`text` with every secret replaced by its marker, in at most `limit` UTF-8 bytes.

    Longer output is cut at a character boundary, never inside a marker, and
    :func:`truncation_marker` is appended within the limit. The cut moves back
    a word at a time while what it leaves at the end would itself read as a
    secret (a digit run cut short, ``password=`` without its value): with the
    same limit, ``redact_text(redact_text(x)) == redact_text(x)``. Lone
    surrogates and NUL become U+FFFD, so the result is always valid UTF-8 that
    Postgres can store as text.

    Raises :class:`ValueError` if `limit` is below :data:`MIN_LIMIT`.
    """
    _check(limit)
    return _bounded(_redact(_valid_unicode(text)), limit)


def redact_value(value: object, *, limit: int = MAX_DISPLAY_BYTES) -> object:
    """A redacted copy of the JSON-like `value`; the input is never mutated.

    `value` is built of dicts with str keys, lists or tuples (both become
    lists), str, int, float, bool and None. The value under a sensitive key,
    of any type, becomes ``[REDACTED:secret]``; every other string, keys
    included, is redacted as :func:`redact_text` does without its limit; an int
    whose digits are a card number becomes the string ``[REDACTED:card]``. Keys
    that redaction makes equal get ``#2``, ``#3``, … appended (after a space
    when the key ends with a value that the suffix would otherwise extend).

    If the compact JSON of the result (``ensure_ascii=False``, separators
    ``,`` and ``:``) is over `limit` UTF-8 bytes, that JSON text is returned
    instead, as a str truncated exactly as :func:`redact_text` truncates:
    at most `limit` bytes, ending with ``…[truncated N bytes]``.

    Raises :class:`TypeError` for another type or a non-str key, and
    :class:`ValueError` if `limit` is below :data:`MIN_LIMIT`.
    """
    _check(limit)
    redacted = _redact_json(value)
    encoded = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode()) <= limit:
        return redacted
    return _bounded(_redact(encoded), limit)


def redact_counted(value: object, *, limit: int = MAX_DISPLAY_BYTES) -> Redacted:
    """:func:`redact_value`, with how many values of each kind it replaced.

    A value replaced because of its key counts under ``secret``, the kind its
    marker names, whatever it held; an int that is a card number under
    ``card``; a string (a dict key too) under the kind of each marker it
    gained. Over the limit, the JSON text is redacted again as text before it is
    cut, as :func:`redact_value` does, and what that replaces counts too; the
    values cut away still count, and ``truncated`` is 1 if the text was cut.
    A value that already was ``[REDACTED:secret]``
    under a sensitive key, or markers already in a string, count nothing, so
    counting redacted output gives ``{}``.

    Raises what :func:`redact_value` raises.
    """
    _check(limit)
    redacted = _redact_json(value)
    counts: dict[str, int] = {}
    _count_json(value, redacted, counts)
    encoded = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode()) <= limit:
        return Redacted(redacted, _sorted(counts))
    shown = _redact(encoded)
    _count_markers(encoded, shown, counts)
    bounded = _bounded(shown, limit)
    if bounded != shown:
        counts[TRUNCATED] = 1
    return Redacted(bounded, _sorted(counts))


def redact_text_counted(text: str, *, limit: int = MAX_DISPLAY_BYTES) -> Redacted:
    """:func:`redact_text`, with how many values of each kind it replaced.

    `value` is the str :func:`redact_text` returns; `counts` as in
    :func:`redact_counted`. Raises what :func:`redact_text` raises.
    """
    _check(limit)
    valid = _valid_unicode(text)
    shown = _redact(valid)
    counts: dict[str, int] = {}
    _count_markers(valid, shown, counts)
    bounded = _bounded(shown, limit)
    if bounded != shown:
        counts[TRUNCATED] = 1
    return Redacted(bounded, _sorted(counts))


def _redact(text: str) -> str:
    # Once a secret is a marker its neighbours see a bracket, and may now match
    # (``4111…1111sk-proj-…``): redact again until nothing changes. Every round that
    # changes something turns text into markers, so this ends; the bound is a guard.
    for _ in range(_ROUNDS):
        shown = _assignments(redact_shapes(text))
        if shown == text:
            break
        text = shown
    return text


def _assignments(text: str) -> str:
    """Layer 2 in text: the value after a sensitive key and ``:``, ``=``, ``:=`` or ``=>``.

    Separators are found with ``str.find`` and the key is read backwards from
    each, so ordinary words cost nothing. Quotes and a scheme such as
    ``Bearer`` stay; a value that is already a marker is left alone.
    """
    pieces: list[str] = []
    done = 0
    colon, equals = text.find(":"), text.find("=")
    while colon != -1 or equals != -1:
        at = colon if equals == -1 or -1 < colon < equals else equals
        end = at + 2 if text[at + 1 : at + 2] in ("=", ">") else at + 1
        if -1 < colon < end:
            colon = text.find(":", end)
        if -1 < equals < end:
            equals = text.find("=", end)
        key = _KEY_REVERSED.match(text[max(done, at - 64) : at][::-1]) if at >= done else None
        if key is None or not is_sensitive_key(key[1][::-1]):
            continue
        value = _VALUE.match(text, end)
        group = next((index for index in (1, 2, 3) if value and value[index] is not None), 0)
        if not value or not value[group] or MARKER_PATTERN.fullmatch(value[group]):
            continue
        pieces += (text[done : value.start(group)], _SECRET)
        done = value.end(group)
    return "".join([*pieces, text[done:]]) if pieces else text


def _redact_json(value: object) -> object:
    if isinstance(value, str):
        return _redact(_valid_unicode(value))
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        # Only 13 to 19 digits can be a card; str() of a huge int would even raise.
        if 10**12 <= abs(value) < 10**19 and (shown := _redact(str(value))) != str(value):
            return shown
        return value
    if isinstance(value, list | tuple):
        return [_redact_json(item) for item in value]
    if isinstance(value, dict):
        redacted: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"cannot redact a dict key of type {type(key).__name__}")
            unique = shown = _redact(_valid_unicode(key))
            suffix = 2
            while unique in redacted:
                unique, suffix = _numbered(shown, suffix), suffix + 1
            redacted[unique] = _SECRET if is_sensitive_key(key) else _redact_json(item)
        return redacted
    raise TypeError(f"cannot redact a value of type {type(value).__name__}")


def _numbered(key: str, number: int) -> str:
    # Glued to a value at the end of the key, "#2" would make it another value when the
    # output is redacted again ("token: [REDACTED:secret]#2"); a space keeps them apart.
    numbered = f"{key}#{number}"
    return numbered if _redact(numbered) == numbered else f"{key} #{number}"


def _count_json(value: object, shown: object, counts: dict[str, int]) -> None:
    """Counts what :func:`_redact_json` replaced by walking `value` beside its result."""
    if isinstance(value, str) and isinstance(shown, str):
        _count_markers(value, shown, counts)
    elif isinstance(value, int) and isinstance(shown, str):
        _count_markers(str(value), shown, counts)
    elif isinstance(value, list | tuple) and isinstance(shown, list):
        for item, shown_item in zip(value, shown, strict=True):
            _count_json(item, shown_item, counts)
    elif isinstance(value, dict) and isinstance(shown, dict):
        # Each key yields exactly one shown key, in the same order.
        for (key, item), (shown_key, shown_item) in zip(value.items(), shown.items(), strict=True):
            _count_markers(key, shown_key, counts)
            if not is_sensitive_key(key):
                _count_json(item, shown_item, counts)
            elif item != _SECRET:
                counts["secret"] = counts.get("secret", 0) + 1


def _count_markers(before: str, after: str, counts: dict[str, int]) -> None:
    """Adds the markers `after` holds beyond those `before` held, by kind."""
    if after == before or "[REDACTED:" not in after:
        return
    added = Counter(MARKER_PATTERN.findall(after))
    if "[REDACTED:" in before:
        added.subtract(MARKER_PATTERN.findall(before))
    for found, count in added.items():
        if count > 0:
            kind = found[len("[REDACTED:") : -1]
            counts[kind] = counts.get(kind, 0) + count


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return {kind: counts[kind] for kind in sorted(counts)} if len(counts) > 1 else counts


def _bounded(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    head = data[: limit - len(truncation_marker(len(data)).encode())].decode(errors="ignore")
    opened = head.rfind("[")
    if opened >= 0 and "]" not in head[opened:] and "[REDACTED:".startswith(head[opened:][:10]):
        head = head[:opened]
    for _ in range(_TRUNCATION_TRIES):
        candidate = head + truncation_marker(len(data) - len(head.encode()))
        if _redact(candidate) == candidate:
            return candidate
        # The cut left something that reads as a secret: drop the last word and retry.
        kept = head.rstrip()
        head = kept[: len(kept) - len(kept.split()[-1])] if kept else ""
    return truncation_marker(len(data))


def _valid_unicode(text: str) -> str:
    # NUL is valid UTF-8 but no Postgres text can hold it: shown text must be storable.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _check(limit: int) -> None:
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} bytes, got {limit}")

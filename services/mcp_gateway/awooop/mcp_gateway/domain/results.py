"""Turning an MCP tool answer into what a gateway event may carry.

A result is the tool's structured content when it has one, else its text
content. Before any event, log or read model sees it, it is redacted
(`awooop.security.redaction`: secrets and personal data by pattern, values
under sensitive keys) and bounded: nothing larger than `MAX_RESULT_BYTES`
(16 KiB of UTF-8 JSON or text) reaches an event; a larger result becomes its
JSON text cut to fit and ending with the visible truncation marker, so a
consumer can tell a cut answer from a whole one. Failure reasons are redacted
too (a tool's error text may quote what it was given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from awooop.security.redaction import is_sensitive_key, marker, redact_counted, redact_text

MAX_RESULT_BYTES = 16 * 1024
BLOT = marker("secret")
MAX_REASON_CHARS = 4096
"""The `reason` field of `gateway.tool_call_failed` holds at most this many characters."""


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What an MCP `tools/call` returned, independent of the SDK's classes."""

    structured: Mapping[str, Any] | None
    texts: Sequence[str]
    is_error: bool
    credentials: frozenset[str] = field(default=frozenset(), repr=False)
    """The credential values the answering session was opened with (its server's
    environment or headers): a server that repeats one in its answer has it blotted
    like an argument's secret. Never printed."""


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful call's result, redacted and bounded, with the redaction counts."""

    result: dict[str, Any] | str
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallError:
    """A call that produced no result: its error code, a bounded redacted reason, and
    whether the cause could pass on its own (None: not known)."""

    code: str
    reason: str
    transient: bool | None = None


def shape_answer(
    answer: ToolAnswer, failed_code: str, hidden: Sequence[str] = ()
) -> CallResult | CallError:
    """The event-ready form of `answer`; a tool's own error becomes a permanent
    `CallError(failed_code, its text)`. `hidden` are values the call's arguments held
    under sensitive keys: a tool that repeats one in words ("wrong password hunter2")
    gives it no shape redaction would know, so each is replaced wherever it appears."""
    if answer.is_error:
        text = "\n".join(answer.texts) or "the tool reported an error without text"
        return CallError(failed_code, bound_reason(text, hidden), transient=False)
    value: Any = (
        dict(answer.structured) if answer.structured is not None else "\n".join(answer.texts)
    )
    value, blotted = _blotted(value, hidden)
    redacted = redact_counted(value, limit=MAX_RESULT_BYTES)
    shaped = redacted.value
    assert isinstance(shaped, dict | str)  # a dict stays one when it fits, else JSON text
    counts = dict(redacted.counts)
    if blotted:
        counts[SECRET_KIND] = counts.get(SECRET_KIND, 0) + blotted
    return CallResult(shaped, counts)


def observed(tool: str) -> CallResult:
    """The result of an approved call to an observation-only tool: the action was
    approved and recorded, and never performed (no MCP server was called)."""
    return CallResult(
        {
            "observed": True,
            "performed": False,
            "tool": tool,
            "note": "observation-only tool: the approved action was recorded, not performed",
        }
    )


SECRET_KIND = "secret"  # noqa: S105 (a redaction kind, not a password)
MIN_HIDDEN_CHARS = 4
"""Shorter values under sensitive keys are not searched for (they would match words)."""


def sensitive_values(arguments: Mapping[str, Any]) -> tuple[str, ...]:
    """The values `arguments` holds under sensitive keys, at any depth, as text."""
    found: list[str] = []

    def walk(value: Any, hiding: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, hiding or (isinstance(key, str) and is_sensitive_key(key)))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, hiding)
        elif hiding and isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_HIDDEN_CHARS:
                found.append(text)

    walk(arguments, False)
    # Longest first, so a value inside another is not replaced in part first.
    return tuple(sorted(set(found), key=len, reverse=True))


def with_credentials(hidden: Sequence[str], credentials: frozenset[str]) -> tuple[str, ...]:
    """`hidden` and the `credentials` of at least `MIN_HIDDEN_CHARS`, longest first."""
    if not credentials:
        return tuple(hidden)  # already longest first (`sensitive_values`)
    found = set(hidden) | {value for value in credentials if len(value) >= MIN_HIDDEN_CHARS}
    return tuple(sorted(found, key=len, reverse=True))


def _blotted(value: Any, hidden: Sequence[str]) -> tuple[Any, int]:
    """`value` with every `hidden` text replaced by the secret marker, and how many."""
    if not hidden:
        return value, 0
    if isinstance(value, str):
        count = 0
        for secret in hidden:
            if secret in value:
                count += value.count(secret)
                value = value.replace(secret, BLOT)
        return value, count
    if isinstance(value, dict):
        total, out = 0, {}
        for key, item in value.items():
            new_key, in_key = _blotted(key, hidden)
            out[new_key], in_item = _blotted(item, hidden)
            total += in_key + in_item
        return out, total
    if isinstance(value, list):
        parts = [_blotted(item, hidden) for item in value]
        return [part for part, _ in parts], sum(count for _, count in parts)
    if isinstance(value, int) and not isinstance(value, bool) and str(value) in hidden:
        return BLOT, 1
    return value, 0


def bound_reason(text: str, hidden: Sequence[str] = ()) -> str:
    """A failure reason fit for an event: `hidden` values blotted, redacted, at most
    `MAX_REASON_CHARS`."""
    blotted, _ = _blotted(text, hidden)
    return redact_text(blotted, limit=MAX_REASON_CHARS)

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

from awooop.security.redaction import redact_counted, redact_text

MAX_RESULT_BYTES = 16 * 1024
MAX_REASON_CHARS = 4096
"""The `reason` field of `gateway.tool_call_failed` holds at most this many characters."""


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What an MCP `tools/call` returned, independent of the SDK's classes."""

    structured: Mapping[str, Any] | None
    texts: Sequence[str]
    is_error: bool


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


def shape_answer(answer: ToolAnswer, failed_code: str) -> CallResult | CallError:
    """The event-ready form of `answer`; a tool's own error becomes a permanent
    `CallError(failed_code, its text)`."""
    if answer.is_error:
        text = "\n".join(answer.texts) or "the tool reported an error without text"
        return CallError(failed_code, bound_reason(text), transient=False)
    value: dict[str, Any] | str = (
        dict(answer.structured) if answer.structured is not None else "\n".join(answer.texts)
    )
    redacted = redact_counted(value, limit=MAX_RESULT_BYTES)
    shaped = redacted.value
    assert isinstance(shaped, dict | str)  # a dict stays one when it fits, else JSON text
    return CallResult(shaped, dict(redacted.counts))


def bound_reason(text: str) -> str:
    """A failure reason fit for an event: redacted, at most `MAX_REASON_CHARS`."""
    return redact_text(text, limit=MAX_REASON_CHARS)

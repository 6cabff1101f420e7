"""Turning an MCP tool answer into what a gateway event may carry.

A result is the tool's structured content when it has one, else its text
content. Nothing larger than `MAX_RESULT_BYTES` (16 KiB of UTF-8 JSON or text)
reaches an event: a larger result becomes a string cut to fit and marked
truncated, so a consumer can tell a cut answer from a whole one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_RESULT_BYTES = 16 * 1024
MAX_REASON_CHARS = 4096
"""The `reason` field of `gateway.tool_call_failed` holds at most this many characters."""

TRUNCATION_MARK = "…[truncated: {size} bytes]"


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What an MCP `tools/call` returned, independent of the SDK's classes."""

    structured: Mapping[str, Any] | None
    texts: Sequence[str]
    is_error: bool


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful call's result, ready for `gateway.tool_call_succeeded`."""

    result: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class CallError:
    """A call that produced no result: its error code and a bounded reason."""

    code: str
    reason: str


def shape_answer(answer: ToolAnswer, failed_code: str) -> CallResult | CallError:
    """The event-ready form of `answer`; an MCP error becomes `CallError(failed_code, text)`."""
    if answer.is_error:
        text = "\n".join(answer.texts) or "the tool reported an error without text"
        return CallError(failed_code, bound_reason(text))
    if answer.structured is not None:
        structured = dict(answer.structured)
        encoded = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        if len(encoded.encode("utf-8")) <= MAX_RESULT_BYTES:
            return CallResult(structured)
        return CallResult(truncate_text(encoded))
    return CallResult(truncate_text("\n".join(answer.texts)))


def truncate_text(text: str, limit: int = MAX_RESULT_BYTES) -> str:
    """`text` unchanged when it fits `limit` UTF-8 bytes, else cut and marked, within `limit`."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    mark = TRUNCATION_MARK.format(size=len(raw))
    room = limit - len(mark.encode("utf-8"))
    # A cut inside a multi-byte character drops that character, never the limit.
    return raw[:room].decode("utf-8", errors="ignore") + mark


def bound_reason(text: str) -> str:
    """A failure reason that fits the event field (`MAX_REASON_CHARS`)."""
    if len(text) <= MAX_REASON_CHARS:
        return text
    mark = "…[truncated]"
    return text[: MAX_REASON_CHARS - len(mark)] + mark

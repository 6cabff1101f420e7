"""Kafka record headers of envelope records, and W3C ``traceparent`` values.

Every envelope record carries ``event_type``, ``schema_version``, ``event_id``,
``project_id`` and ``traceparent`` headers, so a consumer can skip event types it does
not handle, or route a record, without decoding its value.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from awooop.contracts.records.envelope import Envelope, is_valid_trace_id

HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_EVENT_ID = "event_id"
HEADER_PROJECT_ID = "project_id"
HEADER_TRACEPARENT = "traceparent"

TRACEPARENT_PATTERN = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_SAMPLED = "01"

RecordHeaders = list[tuple[str, bytes]]


def new_span_id() -> str:
    """Return a random W3C parent (span) id: 16 lowercase hex digits, never all zeros."""
    while True:
        span_id = secrets.token_hex(8)
        if span_id != "0" * 16:
            return span_id


def make_traceparent(trace_id: str, span_id: str | None = None) -> str:
    """Build a sampled W3C ``traceparent``: ``00-<trace_id>-<span_id>-01``.

    A fresh span id is drawn when none is given, since the span changes at every hop.
    Raises ``ValueError`` for a malformed trace id or span id.
    """
    if not is_valid_trace_id(trace_id):
        msg = f"not a W3C trace id: {trace_id!r}"
        raise ValueError(msg)
    span = new_span_id() if span_id is None else span_id
    if re.fullmatch(r"[0-9a-f]{16}", span) is None or span == "0" * 16:
        msg = f"not a W3C span id: {span!r}"
        raise ValueError(msg)
    return f"00-{trace_id}-{span}-{_SAMPLED}"


def trace_id_of(traceparent: str) -> str:
    """Return the trace id inside a W3C ``traceparent``; ``ValueError`` when malformed."""
    if re.fullmatch(TRACEPARENT_PATTERN, traceparent) is None:
        msg = f"not a W3C traceparent: {traceparent!r}"
        raise ValueError(msg)
    trace_id = traceparent[3:35]
    if not is_valid_trace_id(trace_id):
        msg = "traceparent carries the all-zero trace id"
        raise ValueError(msg)
    return trace_id


def record_headers(envelope: Envelope[Any], traceparent: str) -> RecordHeaders:
    """Build the headers of the record that carries ``envelope``.

    ``traceparent`` comes from the caller (it changes at every hop); it must carry the
    envelope's own trace id, else ``ValueError``.
    """
    if trace_id_of(traceparent) != envelope.trace_id:
        msg = "traceparent does not carry the envelope's trace_id"
        raise ValueError(msg)
    return [
        (HEADER_EVENT_TYPE, envelope.event_type.encode()),
        (HEADER_SCHEMA_VERSION, str(envelope.schema_version).encode()),
        (HEADER_EVENT_ID, str(envelope.event_id).encode()),
        (HEADER_PROJECT_ID, envelope.project_id.encode()),
        (HEADER_TRACEPARENT, traceparent.encode()),
    ]


@dataclass(frozen=True, slots=True)
class EnvelopeHeaders:
    """What the headers of a received record say; any header may be absent (``None``)."""

    event_type: str | None
    schema_version: int | None
    event_id: str | None
    project_id: str | None
    traceparent: str | None


def read_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> EnvelopeHeaders:
    """Read the envelope headers of a received record, tolerating absent or odd values.

    A header that is missing, not UTF-8 or (for ``schema_version``) not a positive
    decimal reads as ``None``; deciding what that means is the consumer's job.
    """
    found: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None or name in found:
            continue
        try:
            found[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
    version_text = found.get(HEADER_SCHEMA_VERSION, "")
    plain_decimal = version_text.isascii() and version_text.isdigit() and len(version_text) <= 9
    version = int(version_text) if plain_decimal else None
    return EnvelopeHeaders(
        event_type=found.get(HEADER_EVENT_TYPE),
        schema_version=version if version is not None and version >= 1 else None,
        event_id=found.get(HEADER_EVENT_ID),
        project_id=found.get(HEADER_PROJECT_ID),
        traceparent=found.get(HEADER_TRACEPARENT),
    )

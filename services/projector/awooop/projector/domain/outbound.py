"""The messages runs ask bridges to send, and what became of each: one `outbound_messages`
row per `channel.outbound_requested`, keyed by its `event_id` under the run it speaks for.

Two events feed a row, on two topics, in no guaranteed order:

* `channel.outbound_requested` (`awooop.channel.outbound.v1`) owns what was asked: the
  kind, the chat and thread, the text, the buttons' labels, the message it edits, the
  deadline. Each is written once. The text and the labels are kept redacted (the
  timeline's summary keeps only the text's length); an upcast version 1 event has no
  thread, no buttons and edits nothing.
* `channel.delivery_reported` (`awooop.channel.delivery.v1`) owns the delivery: status,
  provider message ids, attempts, code, reason (redacted) and when it was reported. A
  report may come first: its row then waits for the request's columns. Should two
  reports ever name one message, the one with the lowest `event_id` wins, in memory and
  in the SQL merge alike, so arrival order does not matter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.security.redaction import redact_text

OUTBOUND_REQUESTED = "channel.outbound_requested"
DELIVERY_REPORTED = "channel.delivery_reported"

REQUEST_COLUMNS = (
    "kind",
    "channel_type",
    "chat_id",
    "text",
    "deliver_before",
    "occurred_at",
    "thread_id",
    "reply_to",
    "button_labels",
    "edit_of",
)
"""Written once each (the first non-null value); a report also names the first three."""

DELIVERY_COLUMNS = (
    "status",
    "provider_message_ids",
    "attempts",
    "code",
    "reason",
    "reported_at",
    "report_event_id",
)
"""Owned together by one delivery report: the lowest `report_event_id` wins."""

OUTBOUND_COLUMNS = ("project_id", "run_id", "event_id", *REQUEST_COLUMNS, *DELIVERY_COLUMNS)


@dataclass(frozen=True, slots=True)
class OutboundRow:
    """What some events say about one outbound message; None where they say nothing."""

    project_id: str
    run_id: uuid.UUID
    event_id: uuid.UUID
    kind: str | None = None
    channel_type: str | None = None
    chat_id: str | None = None
    text: str | None = None
    deliver_before: dt.datetime | None = None
    occurred_at: dt.datetime | None = None
    thread_id: str | None = None
    reply_to: str | None = None
    button_labels: list[str] | None = field(default=None)
    edit_of: uuid.UUID | None = None
    status: str | None = None
    provider_message_ids: list[str] | None = field(default=None)
    attempts: int | None = None
    code: str | None = None
    reason: str | None = None
    reported_at: dt.datetime | None = None
    report_event_id: uuid.UUID | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in OUTBOUND_COLUMNS)

    def merged(self, other: OutboundRow) -> OutboundRow:
        """The row both say, by the rules of the module docstring."""
        changes = {
            c: getattr(other, c)
            for c in REQUEST_COLUMNS
            if getattr(self, c) is None and getattr(other, c) is not None
        }
        if other.report_event_id is not None and (
            self.report_event_id is None or other.report_event_id < self.report_event_id
        ):
            changes |= {c: getattr(other, c) for c in DELIVERY_COLUMNS}
        return replace(self, **changes)


def outbound_row(envelope: Envelope[Any]) -> OutboundRow:
    """The request's part of its row."""
    p = envelope.payload
    return OutboundRow(
        project_id=envelope.project_id,
        run_id=p.run_id,
        event_id=envelope.event_id,
        kind=p.kind,
        channel_type=p.channel_type,
        chat_id=p.chat_id,
        text=redact_text(p.text),
        deliver_before=p.deliver_before,
        occurred_at=envelope.occurred_at,
        thread_id=p.thread_id,
        reply_to=p.reply_to,
        button_labels=[redact_text(button.label) for button in p.buttons],
        edit_of=p.edit_of,
    )


def delivery_row(envelope: Envelope[Any]) -> OutboundRow:
    """The delivery's part of the row of the message it reports on."""
    p = envelope.payload
    return OutboundRow(
        project_id=envelope.project_id,
        run_id=p.run_id,
        event_id=p.outbound_event_id,
        kind=p.kind,
        channel_type=p.channel_type,
        chat_id=p.chat_id,
        status=p.status,
        provider_message_ids=list(p.provider_message_ids),
        attempts=p.attempts,
        code=p.code,
        reason=None if p.reason is None else redact_text(p.reason),
        reported_at=envelope.occurred_at,
        report_event_id=envelope.event_id,
    )


OutboundKey = tuple[str, uuid.UUID, uuid.UUID]


def merge_outbound(rows: dict[OutboundKey, OutboundRow], row: OutboundRow) -> None:
    """Fold `row` into the batch's rows by the merge rule of `OutboundRow.merged`."""
    key = (row.project_id, row.run_id, row.event_id)
    held = rows.get(key)
    rows[key] = row if held is None else held.merged(row)

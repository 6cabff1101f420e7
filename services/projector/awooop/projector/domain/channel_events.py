"""Every inbound record as the read side shows it: one `channel_events` row per ingress
event, keyed by its `event_id`, with what the runtime said about it.

Two kinds of events feed a row, on two topics, in no guaranteed order:

* the ingress event itself (`ingress.message_received`, `ingress.button_pressed`,
  `ingress.inbound_ignored`, `ingress.duplicate_received`, `ingress.inbound_rejected`)
  owns the row's channel columns, each written once (it is the only event with that id);
* the runtime's `run.started` (its `trigger_event_id`), `run.message_queued` and
  `run.message_rejected` (their `message_event_id`) each fill one column about a
  message: the run it started, the run it waits behind, the run that made it busy.
  Those merge by `least`, so even two events naming different runs give one answer
  whatever their order.

The outcome is derived from the columns (`outcome_of`; the table computes the same rule
as a generated column), never stored by an event, so arrival order cannot change it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

ChannelEventKind = Literal["message", "button", "ignored", "duplicate", "rejected"]
ChannelOutcome = Literal[
    "run_started",
    "busy",
    "queued",
    "received",
    "button_pressed",
    "ignored",
    "duplicate_of",
    "rejected",
]
CHANNEL_OUTCOMES: tuple[ChannelOutcome, ...] = (
    "run_started",
    "busy",
    "queued",
    "received",
    "button_pressed",
    "ignored",
    "duplicate_of",
    "rejected",
)

CHANNEL_EVENT_COLUMNS = (
    "project_id",
    "event_id",
    "kind",
    "channel_type",
    "provider_event_id",
    "platform_subject_id",
    "chat_id",
    "thread_id",
    "message_id",
    "display_text",
    "reason",
    "code",
    "record_key",
    "duplicate_of",
    "record_partition",
    "record_offset",
    "received_at",
    "occurred_at",
    "run_id",
    "queued_on",
    "busy_with",
)
"""The columns a batch writes; the table adds `outcome`, generated from them."""

RUNTIME_COLUMNS = ("run_id", "queued_on", "busy_with")
"""Filled by run events, merged by `least`; every other column is the ingress event's."""

INGRESS_COLUMNS = tuple(
    c for c in CHANNEL_EVENT_COLUMNS if c not in ("project_id", "event_id", *RUNTIME_COLUMNS)
)

CHANNEL_EVENT_DIGEST_COLUMNS = (*CHANNEL_EVENT_COLUMNS, "outcome")

_KIND_OUTCOMES: dict[str, ChannelOutcome] = {
    "button": "button_pressed",
    "ignored": "ignored",
    "duplicate": "duplicate_of",
    "rejected": "rejected",
}


@dataclass(frozen=True, slots=True)
class ChannelEventRow:
    """What some events say about one ingress event; None where they say nothing."""

    project_id: str
    event_id: uuid.UUID
    kind: ChannelEventKind | None = None
    channel_type: str | None = None
    provider_event_id: str | None = None
    platform_subject_id: str | None = None
    chat_id: str | None = None
    thread_id: str | None = None
    message_id: str | None = None
    display_text: str | None = None
    reason: str | None = None
    code: str | None = None
    record_key: str | None = None
    duplicate_of: uuid.UUID | None = None
    record_partition: int | None = None
    record_offset: int | None = None
    received_at: dt.datetime | None = None
    occurred_at: dt.datetime | None = None
    run_id: uuid.UUID | None = None
    queued_on: uuid.UUID | None = None
    busy_with: uuid.UUID | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in CHANNEL_EVENT_COLUMNS)

    @property
    def outcome(self) -> ChannelOutcome | None:
        return outcome_of(self.kind, self.run_id, self.busy_with, self.queued_on)

    def merged(self, other: ChannelEventRow) -> ChannelEventRow:
        """The row both say: ingress columns first non-null, runtime columns the least."""
        changes: dict[str, Any] = {}
        for column in INGRESS_COLUMNS:
            if getattr(self, column) is None and getattr(other, column) is not None:
                changes[column] = getattr(other, column)
        for column in RUNTIME_COLUMNS:
            known = [v for v in (getattr(self, column), getattr(other, column)) if v is not None]
            changes[column] = min(known) if known else None
        return replace(self, **changes)


def outcome_of(
    kind: str | None,
    run_id: uuid.UUID | None,
    busy_with: uuid.UUID | None,
    queued_on: uuid.UUID | None,
) -> ChannelOutcome | None:
    """What became of an ingress event; None while only the runtime's facts are known.

    A message that started a run is `run_started` (a queued message ends there too);
    else `busy` when the active run refused it, `queued` while it waits, `received`
    while nothing is known yet. Every other kind has one outcome of its own."""
    if kind is None:
        return None
    if kind != "message":
        return _KIND_OUTCOMES[kind]
    if run_id is not None:
        return "run_started"
    if busy_with is not None:
        return "busy"
    return "queued" if queued_on is not None else "received"


ChannelEventKey = tuple[str, uuid.UUID]


def merge_channel_event(rows: dict[ChannelEventKey, ChannelEventRow], row: ChannelEventRow) -> None:
    """Fold `row` into the batch's rows by the merge rule of `ChannelEventRow.merged`."""
    key = (row.project_id, row.event_id)
    held = rows.get(key)
    rows[key] = row if held is None else held.merged(row)

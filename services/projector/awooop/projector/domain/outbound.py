"""The messages runs ask bridges to send: one `outbound_messages` row per event.

Folded from `channel.outbound_requested` on `awooop.channel.outbound.v1`; each
event is its own row, keyed by its `event_id` under the run it speaks for, and
written once (a redelivery is the same row). The text is the agent's reply as
the runtime sent it; the timeline's summary of the event keeps only its length.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from awooop.contracts.records.envelope import Envelope

OUTBOUND_REQUESTED = "channel.outbound_requested"

OUTBOUND_COLUMNS = (
    "project_id",
    "run_id",
    "event_id",
    "kind",
    "channel_type",
    "chat_id",
    "text",
    "deliver_before",
    "occurred_at",
)


@dataclass(frozen=True, slots=True)
class OutboundRow:
    project_id: str
    run_id: uuid.UUID
    event_id: uuid.UUID
    kind: str
    channel_type: str
    chat_id: str
    text: str
    deliver_before: dt.datetime
    occurred_at: dt.datetime

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in OUTBOUND_COLUMNS)


def outbound_row(envelope: Envelope[Any]) -> OutboundRow:
    p = envelope.payload
    return OutboundRow(
        project_id=envelope.project_id,
        run_id=p.run_id,
        event_id=envelope.event_id,
        kind=p.kind,
        channel_type=p.channel_type,
        chat_id=p.chat_id,
        text=p.text,
        deliver_before=p.deliver_before,
        occurred_at=envelope.occurred_at,
    )

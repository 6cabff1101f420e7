"""The ``deliveries`` rows and the report appended beside them, in the caller's transaction.

A row is claimed (state ``sending``) and committed before the provider is called, and
moves to its final state only from ``sending``, in the transaction that appends the
report: so a redelivered record never calls twice, and one record never gets two
reports, whichever process or attempt finishes first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres import event_store
from awooop.ingress.outbound.reports import chat_key, delivery_reported
from awooop.ingress.outbound.retry import DeliveryOutcome

SENDING = "sending"

_CLAIM = """
INSERT INTO deliveries (outbound_event_id, project_id, run_id, channel_type, chat_id, state)
VALUES ($1, $2, $3, $4, $5, 'sending')
ON CONFLICT (outbound_event_id) DO NOTHING
RETURNING outbound_event_id
"""
_STATE = "SELECT state FROM deliveries WHERE outbound_event_id = $1"
# Only a message this project delivered to this very chat can be edited.
_EDIT_TARGET = """
SELECT provider_message_ids[1] FROM deliveries
WHERE outbound_event_id = $1 AND project_id = $2 AND channel_type = $3 AND chat_id = $4
  AND state = 'sent'
"""
_FINISH = """
UPDATE deliveries
SET state = $2, provider_message_ids = $3::text[], attempts = $4, finished_at = now()
WHERE outbound_event_id = $1 AND state = 'sending'
RETURNING outbound_event_id
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """The row is new and ours: deliver. ``edit_target`` is the provider id of the
    delivered message ``edit_of`` names (None: post a new message)."""

    edit_target: str | None


async def claim(conn: asyncpg.Connection, request: Envelope[OutboundRequested]) -> Claimed | str:
    """Insert the delivery's row in state ``sending``: `Claimed`, or the state of the row
    an earlier attempt left."""
    payload = request.payload
    inserted = await conn.fetchval(
        _CLAIM,
        request.event_id,
        request.project_id,
        payload.run_id,
        payload.channel_type,
        payload.chat_id,
    )
    if inserted is None:
        return str(await conn.fetchval(_STATE, request.event_id))
    target = None
    if payload.edit_of is not None:
        target = await conn.fetchval(
            _EDIT_TARGET, payload.edit_of, request.project_id, payload.channel_type, payload.chat_id
        )
    return Claimed(target)


async def finish(
    conn: asyncpg.Connection,
    request: Envelope[OutboundRequested],
    outcome: DeliveryOutcome,
    *,
    occurred_at: dt.datetime,
    service: str,
) -> bool:
    """Move the row from ``sending`` to the outcome and append its report; False (and
    nothing written) when the row had already left ``sending``."""
    moved = await conn.fetchval(
        _FINISH,
        request.event_id,
        outcome.status,
        list(outcome.provider_message_ids),
        outcome.attempts,
    )
    if moved is None:
        return False
    report = delivery_reported(request, outcome, occurred_at=occurred_at, service=service)
    await event_store.append(
        conn, [to_new_event(report, Topics.CHANNEL_DELIVERY, chat_key(request))]
    )
    return True

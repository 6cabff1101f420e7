"""Subjects are provisioned on first contact: the first message a person sends names them."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from awooop.ingress.domain import InboundMessage

_PROVISION = """
INSERT INTO subjects (project_id, platform_subject_id, channel_type, first_seen_event_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[])
ORDER BY 1, 2
ON CONFLICT (project_id, platform_subject_id) DO NOTHING
"""


async def provision(
    conn: asyncpg.Connection, accepted: Sequence[tuple[InboundMessage, UUID]]
) -> None:
    """Create the subjects of newly accepted messages that do not exist yet (one statement).

    ``accepted`` is in batch order; a subject seen twice keeps its first event.
    """
    first: dict[tuple[str, str], tuple[InboundMessage, UUID]] = {}
    for message, event_id in accepted:
        subject = message.payload.platform_subject_id
        if subject is not None:  # an ignored record may name nobody
            first.setdefault((message.project_id, subject), (message, event_id))
    if not first:
        return
    rows = list(first.values())
    await conn.execute(
        _PROVISION,
        [m.project_id for m, _ in rows],
        [m.payload.platform_subject_id for m, _ in rows],
        [m.payload.channel_type for m, _ in rows],
        [event_id for _, event_id in rows],
    )

"""The de-duplication record: one row per provider event that became an ingress event."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from awooop.ingress.domain import InboundMessage

# Rows go in key order, so two writers holding overlapping keys wait on each
# other in the same order instead of deadlocking.
_CLAIM = """
INSERT INTO provider_events
    (project_id, channel_type, provider_event_id, event_id, platform_subject_id, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                     $6::timestamptz[])
ORDER BY 1, 2, 3
ON CONFLICT (project_id, channel_type, provider_event_id) DO NOTHING
RETURNING event_id
"""


async def claim_new(
    conn: asyncpg.Connection, candidates: Sequence[tuple[InboundMessage, UUID]]
) -> set[UUID]:
    """Record each message under its proposed event id; return the ids of those new.

    One statement for the batch. A message already recorded (by an earlier batch, a
    redelivery, or an earlier row of this very statement) keeps its first event id and
    its proposed id is not returned.
    """
    if not candidates:
        return set()
    rows = await conn.fetch(
        _CLAIM,
        [m.project_id for m, _ in candidates],
        [m.payload.channel_type for m, _ in candidates],
        [m.payload.provider_event_id for m, _ in candidates],
        [event_id for _, event_id in candidates],
        [m.payload.platform_subject_id or "" for m, _ in candidates],
        [m.payload.received_at for m, _ in candidates],
    )
    return {row["event_id"] for row in rows}


_FIRST = """
SELECT p.project_id, p.channel_type, p.provider_event_id, p.event_id
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(project_id, channel_type, provider_event_id)
JOIN provider_events p USING (project_id, channel_type, provider_event_id)
"""


async def first_event_ids(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], UUID]:
    """The event id each already-recorded provider event became (one statement)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        _FIRST, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}

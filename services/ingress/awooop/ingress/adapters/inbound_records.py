"""One outcome per record of the inbound topic: the record's position, claimed once.

A record redelivered after its batch committed (a rebalance, a restart before the
offset commit) finds its position taken and leaves no second trace. A rejected record's
position stays open to one later decision: `awooop dlq replay` hands the record back
once what refused it (a missing binding) is fixed. One statement per batch, rows in key
order so two writers wait on each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from awooop.infra.kafka.records import RawRecord

Position = tuple[int, int, int]
"""``(partition, offset, timestamp)``: the timestamp tells a record apart from the one
that held its offset before a broker was replaced (offsets start over)."""

_CLAIM = """
INSERT INTO inbound_records
    (record_partition, record_offset, record_timestamp, event_id, rejected)
SELECT p, o, t, e, $5::boolean
FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::uuid[]) AS u(p, o, t, e)
ORDER BY 1, 2, 3
ON CONFLICT (record_partition, record_offset, record_timestamp) DO UPDATE
    SET event_id = excluded.event_id, rejected = false
    WHERE inbound_records.rejected AND NOT excluded.rejected
RETURNING record_partition, record_offset, record_timestamp
"""


def position_of(record: RawRecord) -> Position:
    return (record.partition, record.offset, record.timestamp)


async def claim(
    conn: asyncpg.Connection,
    outcomes: Sequence[tuple[RawRecord, UUID]],
    *,
    rejected: bool = False,
) -> set[Position]:
    """Record each record's outcome event id; return the positions claimed now (the
    others were decided by an earlier transaction). A decision that is not a rejection
    may take the position of an earlier rejection."""
    if not outcomes:
        return set()
    rows = await conn.fetch(
        _CLAIM,
        [r.partition for r, _ in outcomes],
        [r.offset for r, _ in outcomes],
        [r.timestamp for r, _ in outcomes],
        [event_id for _, event_id in outcomes],
        rejected,
    )
    return {(row[0], row[1], row[2]) for row in rows}

"""The `queued_messages` table: messages of the `enqueue` rule waiting, in order, for
their subject's active run to end.

A subject's queue is locked with its runs in the batch that reads it, and drained by
the claim loop for subjects with no active run (`FOR UPDATE SKIP LOCKED`: two
processes never start the same message; the one-active-run-per-subject index refuses a
second run should a batch start one meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.runtime.adapters.runs import TERMINAL
from awooop.runtime.domain.batch import Queued, Subject

_CODEC = EnvelopeCodec()


async def lock_queues(conn: asyncpg.Connection, subjects: Sequence[Subject]) -> list[Queued]:
    """Lock and return the waiting messages of `subjects`, oldest first."""
    if not subjects:
        return []
    rows = await conn.fetch(
        "SELECT seq, envelope FROM queued_messages WHERE (project_id, subject) IN "
        " (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY seq FOR UPDATE",
        [project for project, _ in subjects],
        [subject for _, subject in subjects],
    )
    return [Queued(_CODEC.decode(bytes(row["envelope"])), row["seq"]) for row in rows]


async def lock_idle_heads(conn: asyncpg.Connection, limit: int) -> list[Queued]:
    """Lock the oldest waiting message of up to `limit` subjects that have no active run
    (skipping messages another process holds)."""
    rows = await conn.fetch(
        "SELECT q.seq, q.envelope FROM queued_messages q "
        "WHERE q.seq = (SELECT min(h.seq) FROM queued_messages h "
        "               WHERE h.project_id = q.project_id AND h.subject = q.subject) "
        "  AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.project_id = q.project_id "
        f"                 AND r.platform_subject_id = q.subject AND r.state NOT IN {TERMINAL}) "
        "ORDER BY q.seq LIMIT $1 FOR UPDATE OF q SKIP LOCKED",
        limit,
    )
    return [Queued(_CODEC.decode(bytes(row["envelope"])), row["seq"]) for row in rows]


async def enqueue(conn: asyncpg.Connection, waiting: Sequence[Queued]) -> None:
    """Add messages to their subjects' queues, in order (a message queued before stays)."""
    if not waiting:
        return
    await conn.execute(
        "INSERT INTO queued_messages (project_id, subject, message_event_id, envelope) "
        "SELECT p, s, m, e FROM unnest($1::text[], $2::text[], $3::uuid[], $4::bytea[]) "
        " WITH ORDINALITY AS u(p, s, m, e, n) ORDER BY n "
        "ON CONFLICT (message_event_id) DO NOTHING",
        [w.subject[0] for w in waiting],
        [w.subject[1] for w in waiting],
        [w.envelope.event_id for w in waiting],
        [_CODEC.encode(w.envelope) for w in waiting],
    )


async def dequeue(conn: asyncpg.Connection, seqs: Sequence[int]) -> None:
    """Remove the messages whose runs were started."""
    if seqs:
        await conn.execute("DELETE FROM queued_messages WHERE seq = ANY($1::bigint[])", list(seqs))

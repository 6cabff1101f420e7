"""Everything a folded batch writes, one statement per table, in the caller's transaction.

Runs a batch changed are stored before the runs it started: an interrupted run leaves
its subject before its successor takes the subject's one active place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from awooop.infra.postgres.event_store import NewEvent
from awooop.runtime.adapters import approval_messages, chat_turns, queues, run_batch, run_events
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.domain.batch import BatchWrites

Append = Callable[[Sequence[NewEvent]], Awaitable[object]]


async def write(
    conn: asyncpg.Connection,
    writes: BatchWrites,
    append: Append,
    *,
    owner: str,
    lease_seconds: float,
) -> list[Lease]:
    """Store `writes`; the leases of the runs whose step is now due, taken by `owner`."""
    leased = await run_batch.update_runs(
        conn, list(writes.updates.values()), owner=owner, lease_seconds=lease_seconds
    )
    leased += await run_batch.insert_runs(
        conn, list(writes.inserts.values()), owner=owner, lease_seconds=lease_seconds
    )
    await chat_turns.keep(conn, writes.turns)
    await queues.enqueue(conn, writes.enqueued)
    await queues.dequeue(conn, writes.dequeued)
    await approval_messages.store(conn, list(writes.approvals.values()))
    await append(run_events.stored(writes.events))
    return leased

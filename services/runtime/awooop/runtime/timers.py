"""The claim loop's other timers: waiting messages started when their subject is idle,
and progress messages for runs that have worked an interval without replying.

Both are one short statement per tick that locks what it takes with `SKIP LOCKED`,
so any number of runtime processes share the work and none waits on another.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from awooop.infra.postgres import event_store
from awooop.runtime.adapters import batch_writes, budget_ledger, queues, run_batch, run_events
from awooop.runtime.adapters.runs import COLUMNS, TERMINAL, Lease, run_of
from awooop.runtime.domain.batch import BatchFold
from awooop.runtime.domain.contracts import RunContracts
from awooop.runtime.domain.outbound import progress
from awooop.runtime.domain.recording import record_outbound


async def drain_queues(
    conn: asyncpg.Connection,
    contracts: RunContracts,
    *,
    now: dt.datetime,
    service: str,
    owner: str,
    lease_seconds: float,
    limit: int,
) -> list[Lease]:
    """Start the oldest waiting message of each idle subject (up to `limit`); the leases
    of the runs started, to submit once the transaction committed."""
    heads = await queues.lock_idle_heads(conn, limit)
    if not heads:
        return []
    projects = sorted({head.subject[0] for head in heads})
    killed = frozenset(await budget_ledger.killed(conn, projects))
    # A head whose run exists already (a message queued twice, past the inbox horizon)
    # is dequeued without a second run.
    started = await run_batch.lock_runs(conn, [head.envelope.event_id for head in heads], [])
    fold = BatchFold(started, contracts, now, service, queued=heads, killed=killed)
    for head in heads:
        fold.drain(head.subject)

    async def append(events: object) -> None:
        await event_store.append(conn, events)  # type: ignore[arg-type]

    return await batch_writes.write(
        conn, fold.writes, append, owner=owner, lease_seconds=lease_seconds
    )


_DUE_PROGRESS = (
    "UPDATE runs r SET progress_at = now() + make_interval(secs => r.progress_seconds), "
    " progress_sent = r.progress_sent + 1 "
    "FROM (SELECT run_id FROM runs "
    f"      WHERE state NOT IN {TERMINAL} AND progress_at <= now() "
    "      ORDER BY progress_at LIMIT $1 FOR UPDATE SKIP LOCKED) due "
    "WHERE r.run_id = due.run_id "
    "RETURNING " + ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(",")) + ", "
    " r.progress_sent, r.progress_seconds"
)


async def send_progress(
    conn: asyncpg.Connection, *, now: dt.datetime, service: str, limit: int
) -> int:
    """One interim message for each run (up to `limit`) past its progress time; how many."""
    rows = await conn.fetch(_DUE_PROGRESS, limit)
    envelopes = []
    for row in rows:
        values = dict(row)
        sent, seconds = values.pop("progress_sent"), values.pop("progress_seconds")
        run = run_of(values)
        message = progress(run, now, dt.timedelta(seconds=seconds))
        envelopes += record_outbound(
            run, [message], f"p{sent}", causation_id=None, now=now, service=service
        )
    await event_store.append(conn, run_events.stored(envelopes))
    return len(rows)

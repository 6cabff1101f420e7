"""The `runs` table: state rows locked before every append, leases and timers.

Times come from the database's `now()`, never from a process clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.runtime.domain.run import Run

COLUMNS = (
    "run_id, project_id, platform_subject_id, agent_id, channel_type, chat_id, mode, "
    "revision, trace_id, state, version, step, pending_call_id, last_result::text AS last_result, "
    "thread_id, reply_to"
)
TERMINAL = "('completed', 'failed', 'cancelled', 'timeout')"


def run_of(row: Mapping[str, Any]) -> Run:
    values = dict(row)
    raw = values.pop("last_result")
    return Run(**values, last_result=json.loads(raw) if raw is not None else None)


@dataclass(frozen=True)
class Lease:
    """A run leased to one process for one step; the step commits only under this epoch."""

    run_id: uuid.UUID
    epoch: int
    attempt: int
    max_attempts: int
    timed_out: bool


def to_json(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


async def holds_lease(conn: asyncpg.Connection, lease: Lease, owner: str) -> Run | None:
    """Lock the run; return it only while `owner` still holds `lease`'s epoch."""
    return (await holds_leases(conn, [lease], owner)).get(lease)


async def holds_leases(
    conn: asyncpg.Connection, leases: Sequence[Lease], owner: str
) -> dict[Lease, Run]:
    """Lock, in one statement and in id order (as every batch locks runs), the runs whose
    lease `owner` still holds at each lease's epoch; the others are absent."""
    rows = await conn.fetch(
        f"SELECT r.lease_epoch, {', '.join('r.' + c.strip() for c in COLUMNS.split(','))} "
        "FROM runs r JOIN unnest($2::uuid[], $3::int[]) AS l(run_id, epoch) "
        " ON l.run_id = r.run_id AND r.lease_epoch = l.epoch "
        "WHERE r.lease_owner = $1 ORDER BY r.run_id FOR UPDATE OF r",
        owner,
        [lease.run_id for lease in leases],
        [lease.epoch for lease in leases],
    )
    held: dict[tuple[uuid.UUID, int], Run] = {}
    for row in rows:
        values = dict(row)
        epoch = values.pop("lease_epoch")
        held[(values["run_id"], epoch)] = run_of(values)
    return {lease: run for lease in leases if (run := held.get((lease.run_id, lease.epoch)))}


CLAIM_DUE = (
    "WITH candidates AS ("
    " (SELECT run_id FROM runs"
    f"  WHERE state NOT IN {TERMINAL} AND wake_at <= now()"
    "    AND (lease_until IS NULL OR lease_until < now()) AND run_id <> ALL($4::uuid[])"
    "  ORDER BY wake_at LIMIT $2)"
    " UNION"
    " (SELECT run_id FROM runs"
    f"  WHERE state NOT IN {TERMINAL} AND timeout_at <= now()"
    "    AND (lease_until IS NULL OR lease_until < now())"
    "  ORDER BY timeout_at LIMIT $2)"
    "), due AS ("
    " SELECT r.run_id FROM runs r JOIN candidates c ON c.run_id = r.run_id"
    f" WHERE r.state NOT IN {TERMINAL} AND (r.lease_until IS NULL OR r.lease_until < now())"
    " ORDER BY r.wake_at NULLS LAST LIMIT $2 FOR UPDATE OF r SKIP LOCKED) "
    "UPDATE runs r SET lease_owner = $1, lease_epoch = r.lease_epoch + 1, "
    # A step's lease never outlives the run's timeout, so the timeout claims a
    # run whose step still runs; the lease of the timeout step itself is whole.
    " lease_until = CASE WHEN r.timeout_at <= now() THEN now() + make_interval(secs => $3)"
    "              ELSE least(now() + make_interval(secs => $3), r.timeout_at) END, "
    " attempt = r.attempt + 1 "
    "FROM due WHERE r.run_id = due.run_id "
    "RETURNING r.run_id, r.lease_epoch, r.attempt, r.max_attempts, "
    " r.timeout_at <= now() AS timed_out"
)
"""The claim statement: $1 owner, $2 limit, $3 lease seconds, $4 run ids to skip."""


async def claim_due(
    conn: asyncpg.Connection,
    owner: str,
    limit: int,
    lease_seconds: float,
    skip: Sequence[uuid.UUID] = (),
) -> list[Lease]:
    """Lease the runs nobody holds whose step is due or whose timeout passed.

    This one statement is the reaper (expired leases are simply free again,
    their attempt counted), the run timeout and the step queue. Each branch
    of the candidate UNION is served by its own partial index (`runs_due`,
    `runs_timeout`) and reads at most `limit` rows. `skip` names runs this
    process still holds (a step waiting out an outage): their due step is never
    taken from itself as a new attempt, but their timeout still is.
    """
    rows = await conn.fetch(
        CLAIM_DUE,
        owner,
        limit,
        lease_seconds,
        list(skip),
    )
    return [
        Lease(r["run_id"], r["lease_epoch"], r["attempt"], r["max_attempts"], r["timed_out"])
        for r in rows
    ]


async def extend_leases(
    pool: asyncpg.Pool, owner: str, leases: Sequence[Lease], lease_seconds: float
) -> int:
    """The heartbeat: one statement for every lease this process holds; returns how many
    leases it extended.

    Only the lease's own epoch is extended (a lease taken over meanwhile stays with its
    new holder). A step's lease stops at the run's `timeout_at`, so a step that keeps
    running cannot keep its run from timing out; a timeout step's lease is extended in full.
    """
    if not leases:
        return 0
    status = await pool.execute(
        "UPDATE runs r SET lease_until = CASE WHEN u.timed_out "
        "  THEN now() + make_interval(secs => $5) "
        "  ELSE least(now() + make_interval(secs => $5), r.timeout_at) END "
        "FROM unnest($2::uuid[], $3::int[], $4::bool[]) AS u(run_id, epoch, timed_out) "
        "WHERE r.run_id = u.run_id AND r.lease_owner = $1 AND r.lease_epoch = u.epoch",
        owner,
        [lease.run_id for lease in leases],
        [lease.epoch for lease in leases],
        [lease.timed_out for lease in leases],
        lease_seconds,
    )
    return int(status.rsplit(" ", 1)[-1])

"""The `runs` table: state rows locked before every append, leases and timers.

Times come from the database's `now()`, never from a process clock.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.runtime.domain.run import Run

COLUMNS = (
    "run_id, project_id, platform_subject_id, agent_id, channel_type, chat_id, mode, "
    "revision, trace_id, state, version, step, pending_call_id, last_result::text AS last_result"
)
TERMINAL = "('completed', 'failed', 'cancelled', 'timeout')"


def run_of(row: asyncpg.Record) -> Run:
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


async def save_run(
    conn: asyncpg.Connection,
    run: Run,
    *,
    last_event_id: uuid.UUID,
    lease_to: str | None,
    lease_seconds: float,
) -> Lease | None:
    """Store the run after a decision. With `lease_to`, its next step is due now and leased
    to that process (a new epoch); otherwise any lease is released and it waits for input."""
    row = await conn.fetchrow(
        "UPDATE runs SET state = $2, version = $3, step = $4, pending_call_id = $5, "
        " last_result = $6::jsonb, last_event_id = $7, "
        " wake_at = CASE WHEN $8::text IS NULL THEN NULL ELSE now() END, "
        " lease_owner = $8, "
        " lease_epoch = lease_epoch + 1, "
        " lease_until = CASE WHEN $8::text IS NULL THEN NULL "
        "               ELSE now() + make_interval(secs => $9) END, "
        " attempt = CASE WHEN $8::text IS NULL THEN 0 ELSE 1 END "
        "WHERE run_id = $1 RETURNING lease_epoch, max_attempts",
        run.run_id,
        run.state,
        run.version,
        run.step,
        run.pending_call_id,
        to_json(run.last_result),
        last_event_id,
        lease_to,
        lease_seconds,
    )
    if lease_to is None or row is None:
        return None
    return Lease(run.run_id, row["lease_epoch"], 1, row["max_attempts"], False)


def to_json(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


async def holds_lease(conn: asyncpg.Connection, lease: Lease, owner: str) -> Run | None:
    """Lock the run; return it only while `owner` still holds `lease`'s epoch."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM runs WHERE run_id = $1 AND lease_owner = $2 "
        "AND lease_epoch = $3 FOR UPDATE",
        lease.run_id,
        owner,
        lease.epoch,
    )
    return run_of(row) if row else None


async def claim_due(
    conn: asyncpg.Connection, owner: str, limit: int, lease_seconds: float
) -> list[Lease]:
    """Lease the runs nobody holds whose step is due or whose timeout passed.

    This one statement is the reaper (expired leases are simply free again,
    their attempt counted), the run timeout and the step queue.
    """
    rows = await conn.fetch(
        "WITH due AS ("
        " SELECT run_id FROM runs"
        f" WHERE state NOT IN {TERMINAL}"
        "   AND (lease_until IS NULL OR lease_until < now())"
        "   AND (wake_at <= now() OR timeout_at <= now())"
        " ORDER BY wake_at NULLS LAST LIMIT $2 FOR UPDATE SKIP LOCKED) "
        "UPDATE runs r SET lease_owner = $1, lease_epoch = r.lease_epoch + 1, "
        " lease_until = now() + make_interval(secs => $3), attempt = r.attempt + 1 "
        "FROM due WHERE r.run_id = due.run_id "
        "RETURNING r.run_id, r.lease_epoch, r.attempt, r.max_attempts, "
        " r.timeout_at <= now() AS timed_out",
        owner,
        limit,
        lease_seconds,
    )
    return [
        Lease(r["run_id"], r["lease_epoch"], r["attempt"], r["max_attempts"], r["timed_out"])
        for r in rows
    ]


async def extend_leases(
    pool: asyncpg.Pool, owner: str, run_ids: list[uuid.UUID], lease_seconds: float
) -> None:
    """The heartbeat: one statement for every run this process is stepping."""
    if run_ids:
        await pool.execute(
            "UPDATE runs SET lease_until = now() + make_interval(secs => $3) "
            "WHERE lease_owner = $1 AND run_id = ANY($2::uuid[])",
            owner,
            run_ids,
            lease_seconds,
        )

"""`awooop_ops.dlq_replays`: which DLQ entries were replayed, or failed again, and why.

Operational data, not a read model: it says what an operator did with a dead
letter, so it lives in an operator schema no service role can reach, written
only by `awooop dlq replay` through the admin URL. A row is keyed by the broker
epoch and the entry's DLQ partition and offset: after a broker loss the DLQ
starts again at offset 0, and the new entries are new (decision 0018).

`replayed` is written in the transaction that applied the record, so an entry
is replayed exactly when its effect committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from awooop.cli.dlq_entries import DlqEntry

OPS_SCHEMA = "awooop_ops"
TABLE = f"{OPS_SCHEMA}.dlq_replays"
REPLAYED, FAILED = "replayed", "failed"

_DDL_LOCK = 0x6177_6F6F_6F64
"""Serialises the idempotent DDL below (two concurrent `CREATE … IF NOT EXISTS` can
both try to create the same catalog row)."""

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {OPS_SCHEMA};
REVOKE ALL ON SCHEMA {OPS_SCHEMA} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS {TABLE} (
    broker_epoch     text        NOT NULL,
    dlq_partition    integer     NOT NULL,
    dlq_offset       bigint      NOT NULL,
    consumer_group   text        NOT NULL,
    origin_topic     text        NOT NULL,
    origin_partition integer     NOT NULL,
    origin_offset    bigint      NOT NULL,
    error_code       text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('{REPLAYED}', '{FAILED}')),
    last_error       text,
    attempts         integer     NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broker_epoch, dlq_partition, dlq_offset)
);
"""


@dataclass(frozen=True, slots=True)
class ReplayState:
    """What the last replay of one entry did."""

    status: str
    last_error: str | None
    attempts: int


Key = tuple[int, int]
"""(DLQ partition, DLQ offset)."""


async def ensure_table(conn: asyncpg.Connection) -> None:
    """Create the schema and table when missing; safe to run concurrently."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
        await conn.execute(_DDL)


async def states(conn: asyncpg.Connection, epoch: str) -> dict[Key, ReplayState]:
    """Every recorded replay state of this broker epoch (none before the first replay)."""
    if await conn.fetchval("SELECT to_regclass($1)", TABLE) is None:
        return {}
    rows = await conn.fetch(
        f"SELECT dlq_partition, dlq_offset, status, last_error, attempts FROM {TABLE} "
        "WHERE broker_epoch = $1",
        epoch,
    )
    return {
        (r["dlq_partition"], r["dlq_offset"]): ReplayState(
            r["status"], r["last_error"], r["attempts"]
        )
        for r in rows
    }


async def locked_state(conn: asyncpg.Connection, epoch: str, entry: DlqEntry) -> ReplayState | None:
    """The entry's state, its row locked until the caller's transaction ends (None
    before the first replay ever made the table: a dry run creates nothing)."""
    if await conn.fetchval("SELECT to_regclass($1)", TABLE) is None:
        return None
    row = await conn.fetchrow(
        f"SELECT status, last_error, attempts FROM {TABLE} "
        "WHERE broker_epoch = $1 AND dlq_partition = $2 AND dlq_offset = $3 FOR UPDATE",
        epoch,
        entry.dlq_partition,
        entry.dlq_offset,
    )
    return None if row is None else ReplayState(row["status"], row["last_error"], row["attempts"])


async def record(
    conn: asyncpg.Connection, epoch: str, entry: DlqEntry, status: str, error: str | None
) -> None:
    """Store the outcome of one more replay attempt of `entry`."""
    await conn.execute(
        f"INSERT INTO {TABLE} AS r (broker_epoch, dlq_partition, dlq_offset, consumer_group, "
        " origin_topic, origin_partition, origin_offset, error_code, status, last_error, attempts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) "
        "ON CONFLICT (broker_epoch, dlq_partition, dlq_offset) DO UPDATE SET "
        " status = excluded.status, last_error = excluded.last_error, "
        " attempts = r.attempts + 1, updated_at = now()",
        epoch,
        entry.dlq_partition,
        entry.dlq_offset,
        entry.group,
        entry.origin_topic,
        entry.origin_partition,
        entry.origin_offset,
        entry.code,
        status,
        error,
    )

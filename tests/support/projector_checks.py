"""Waiting for the live projector and reading what it stored, for read-model tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from awooop.infra.settings import asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import spec
from awooop.projector.domain.checksums import Checksums
from support.pipeline import wait_for


async def projector_past(pool: asyncpg.Pool, sent: Sequence[Any]) -> None:
    """Wait until the projector's stored offsets pass every record of `sent` (the
    producer's `RecordMetadata`)."""

    async def past_all() -> bool:
        rows = await pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets WHERE consumer_group = $1",
            spec().consumer_group,
        )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((m.topic, m.partition), 0) > m.offset for m in sent)

    await wait_for(past_all, within=60, message="the projector to pass the sent records")


async def stored_checksums(admin_url: str, projects: set[str]) -> Checksums:
    """The live read models' digests, of `projects` only."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        every = await schema_checksums(conn, "projector")
    finally:
        await conn.close()
    for table, per_project in every.tables.items():
        every.tables[table] = {p: d for p, d in per_project.items() if p in projects}
    return every

"""Raw `COPY`: read-model rows the projector wrote, copied with `copy_records_to_table` into
plain tables of a scratch schema that have the same columns and indexes but no row-level
security and no merge: the floor under the projector's writes. Runs `rounds` times; the
median round is reported.

The skeleton baseline copies one project's `runs` and `timeline` rows; the rebuild's copies
every row of every read-model table (`project=None`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from kafka_baseline import median_round

from awooop.projector.domain.checksums import READ_MODEL_TABLES

SCRATCH_SCHEMA = "bench_copy"


@dataclass(frozen=True, slots=True)
class CopyBaseline:
    table_rows: dict[str, int]
    """Rows copied per table, in copy order."""
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.table_rows.values())

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def runs_rows(self) -> int:
        return self.table_rows.get("runs", 0)

    @property
    def timeline_rows(self) -> int:
        return self.table_rows.get("timeline", 0)


async def _stored_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns a writer fills: a generated column (`channel_events.outcome`) is
    computed by Postgres and can take no value."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'projector' "
        "AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
        table,
    )
    return [row["column_name"] for row in rows]


async def _rows(
    conn: asyncpg.Connection, table: str, columns: list[str], project: str | None
) -> list[tuple[object, ...]]:
    listed = ", ".join(f'"{column}"' for column in columns)
    if project is None:
        return [tuple(r) for r in await conn.fetch(f"SELECT {listed} FROM projector.{table}")]
    query = f"SELECT {listed} FROM projector.{table} WHERE project_id = $1"
    return [tuple(r) for r in await conn.fetch(query, project)]


async def raw_copy(
    database_url: str,
    project: str | None,
    rounds: int = 3,
    tables: Iterable[str] = READ_MODEL_TABLES,
) -> CopyBaseline:
    """Median of `rounds` COPYs of the rows of `tables` in schema `projector`: those of
    `project`, or every row when `project` is None."""
    conn = await asyncpg.connect(
        database_url, server_settings={"application_name": "awooop-bench-copy"}
    )
    try:
        columns = {table: await _stored_columns(conn, table) for table in tables}
        rows = {table: await _rows(conn, table, columns[table], project) for table in tables}
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCRATCH_SCHEMA}")
        for table in rows:
            # LIKE … INCLUDING ALL copies columns, keys and indexes, not RLS policies.
            await conn.execute(
                f"CREATE TABLE {SCRATCH_SCHEMA}.{table} (LIKE projector.{table} INCLUDING ALL)"
            )
        scratch = ", ".join(f"{SCRATCH_SCHEMA}.{table}" for table in rows)
        counts = {table: len(records) for table, records in rows.items()}
        results = []
        for _ in range(rounds):
            await conn.execute(f"TRUNCATE {scratch}")
            started = time.perf_counter()
            async with conn.transaction():
                for table, records in rows.items():
                    await conn.copy_records_to_table(
                        table, records=records, columns=columns[table], schema_name=SCRATCH_SCHEMA
                    )
            results.append(CopyBaseline(counts, time.perf_counter() - started))
        await conn.execute(f"DROP SCHEMA {SCRATCH_SCHEMA} CASCADE")
    finally:
        await conn.close()
    return median_round(results, key=lambda r: r.seconds)

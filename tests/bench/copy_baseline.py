"""Raw `COPY`: the very read-model rows the projector wrote (`runs` and `timeline` of the
project), copied with `copy_records_to_table` into plain tables of a scratch schema that
have the same columns and indexes but no row-level security and no merge: the floor under
the projector's writes. Runs `rounds` times; the median round is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
from kafka_baseline import median_round

SCRATCH_SCHEMA = "bench_copy"
_ROWS = "SELECT * FROM projector.{table} WHERE project_id = $1"


@dataclass(frozen=True, slots=True)
class CopyBaseline:
    runs_rows: int
    timeline_rows: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.runs_rows + self.timeline_rows

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def raw_copy(database_url: str, project: str, rounds: int = 3) -> CopyBaseline:
    """Median of `rounds` COPYs of the project's `runs` and `timeline` rows."""
    conn = await asyncpg.connect(
        database_url, server_settings={"application_name": "awooop-bench-copy"}
    )
    try:
        runs = [tuple(r) for r in await conn.fetch(_ROWS.format(table="runs"), project)]
        timeline = [tuple(r) for r in await conn.fetch(_ROWS.format(table="timeline"), project)]
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        await conn.execute(f"CREATE SCHEMA {SCRATCH_SCHEMA}")
        for table in ("runs", "timeline"):
            # LIKE … INCLUDING ALL copies columns, keys and indexes, not RLS policies.
            await conn.execute(
                f"CREATE TABLE {SCRATCH_SCHEMA}.{table} (LIKE projector.{table} INCLUDING ALL)"
            )
        results = []
        for _ in range(rounds):
            await conn.execute(f"TRUNCATE {SCRATCH_SCHEMA}.runs, {SCRATCH_SCHEMA}.timeline")
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table("runs", records=runs, schema_name=SCRATCH_SCHEMA)
                await conn.copy_records_to_table(
                    "timeline", records=timeline, schema_name=SCRATCH_SCHEMA
                )
            results.append(CopyBaseline(len(runs), len(timeline), time.perf_counter() - started))
        await conn.execute(f"DROP SCHEMA {SCRATCH_SCHEMA} CASCADE")
    finally:
        await conn.close()
    return median_round(results, key=lambda r: r.seconds)

"""The bulk path of the budget's read models, `run_steps` (the settled usage the
`budget_usage` view sums), `budget_state` and `budget_trips`: staged by COPY, merged
by one statement per table, in key order, as read_model_writer.py does.

The merges apply the fold's rules between a staged row and the stored one: a step's
row is the one of its event with the lowest `event_id`; a project's kill switch is
the one of its kill or reset event with the highest `(stream_seq, event_id)`; scope
trips are written once per event. Only rows that change are updated, so a
redelivered batch leaves no dead tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from awooop.projector.domain.budget_models import BUDGET_STATE_COLUMNS, BUDGET_TRIP_COLUMNS
from awooop.projector.domain.rows import ReadModelRows
from awooop.projector.domain.steps import STEP_COLUMNS

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS run_steps_stage (
    project_id text, run_id uuid, number integer, model text, tokens_in bigint,
    tokens_out bigint, cost numeric, latency_ms bigint, schema_retries integer,
    reserved_tokens bigint, outcome text, event_id uuid, occurred_at timestamptz,
    day text, month text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS budget_state_stage (
    project_id text, killed boolean, changed_at timestamptz, event_type text, event_id uuid,
    code text, reason text, actor text, budget_revision text, last_stream_seq integer
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS budget_trips_stage (
    project_id text, event_id uuid, scope_key text, scope text, period text, period_key text,
    budget_revision text, occurred_at timestamptz
) ON COMMIT DELETE ROWS;
"""


def _replace_when(table: str, columns: Sequence[str], key: Sequence[str], wins: str) -> str:
    """Insert the staged rows; a conflicting row is replaced whole when `wins` holds."""
    listed = ", ".join(columns)
    keys = ", ".join(key)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} AS t ({listed}) SELECT {listed} FROM {table}_stage "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates} WHERE {wins}"
    )


def insert_once(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """Insert the staged rows of `table`; a row already stored stays as it is."""
    listed, keys = ", ".join(columns), ", ".join(key)
    return (
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {table}_stage "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO NOTHING"
    )


UPSERT_RUN_STEPS = _replace_when(
    "run_steps", STEP_COLUMNS, ("project_id", "run_id", "number"), "excluded.event_id < t.event_id"
)
UPSERT_BUDGET_STATE = _replace_when(
    "budget_state",
    BUDGET_STATE_COLUMNS,
    ("project_id",),
    "(excluded.last_stream_seq, excluded.event_id) > (t.last_stream_seq, t.event_id)",
)
INSERT_BUDGET_TRIPS = insert_once("budget_trips", BUDGET_TRIP_COLUMNS, ("project_id", "event_id"))


async def write_budget_models(conn: asyncpg.Connection, rows: ReadModelRows) -> None:
    """Merge one batch's step and budget rows (inside the batch transaction)."""
    merges: list[tuple[str, Sequence[str], Sequence[Any], str]] = [
        ("run_steps_stage", STEP_COLUMNS, rows.steps, UPSERT_RUN_STEPS),
        ("budget_state_stage", BUDGET_STATE_COLUMNS, rows.budget_states, UPSERT_BUDGET_STATE),
        ("budget_trips_stage", BUDGET_TRIP_COLUMNS, rows.budget_trips, INSERT_BUDGET_TRIPS),
    ]
    if not any(staged for _, _, staged, _ in merges):
        return
    await conn.execute(STAGING_DDL)
    for stage, columns, staged, merge in merges:
        if staged:
            records = [row.values() for row in staged]
            await conn.copy_records_to_table(stage, columns=columns, records=records)
            await conn.execute(merge)

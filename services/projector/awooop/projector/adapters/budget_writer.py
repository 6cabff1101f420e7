"""The bulk path of the budget's read models, `run_steps` (the settled usage the
`budget_usage` view sums), `budget_state` and `budget_trips`: one merge statement per
table, in key order, as read_model_writer.py does.

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

from awooop.projector.adapters.row_source import RowSource, merge_all
from awooop.projector.domain.budget_models import BUDGET_STATE_COLUMNS, BUDGET_TRIP_COLUMNS
from awooop.projector.domain.rows import ReadModelRows
from awooop.projector.domain.steps import STEP_COLUMNS

RUN_STEP_ROWS = RowSource.declared(
    "run_steps_rows",
    "project_id text, run_id uuid, number integer, model text, tokens_in bigint, "
    "tokens_out bigint, cost numeric, latency_ms bigint, schema_retries integer, "
    "reserved_tokens bigint, outcome text, event_id uuid, occurred_at timestamptz, "
    "day text, month text",
)
BUDGET_STATE_ROWS = RowSource.declared(
    "budget_state_rows",
    "project_id text, killed boolean, changed_at timestamptz, event_type text, event_id uuid, "
    "code text, reason text, actor text, budget_revision text, last_stream_seq integer",
)
BUDGET_TRIP_ROWS = RowSource.declared(
    "budget_trips_rows",
    "project_id text, event_id uuid, scope_key text, scope text, period text, period_key text, "
    "budget_revision text, occurred_at timestamptz",
)


def _replace_when(
    table: str, source: RowSource, columns: Sequence[str], key: Sequence[str], wins: str
) -> str:
    """Insert the batch's rows; a conflicting row is replaced whole when `wins` holds."""
    listed = ", ".join(columns)
    keys = ", ".join(key)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} AS t ({listed}) SELECT {listed} FROM {source.sql} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates} WHERE {wins}"
    )


def insert_once(table: str, source: RowSource, columns: Sequence[str], key: Sequence[str]) -> str:
    """Insert the batch's rows of `table`; a row already stored stays as it is."""
    listed, keys = ", ".join(columns), ", ".join(key)
    return (
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {source.sql} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO NOTHING"
    )


UPSERT_RUN_STEPS = _replace_when(
    "run_steps",
    RUN_STEP_ROWS,
    STEP_COLUMNS,
    ("project_id", "run_id", "number"),
    "excluded.event_id < t.event_id",
)
UPSERT_BUDGET_STATE = _replace_when(
    "budget_state",
    BUDGET_STATE_ROWS,
    BUDGET_STATE_COLUMNS,
    ("project_id",),
    "(excluded.last_stream_seq, excluded.event_id) > (t.last_stream_seq, t.event_id)",
)
INSERT_BUDGET_TRIPS = insert_once(
    "budget_trips", BUDGET_TRIP_ROWS, BUDGET_TRIP_COLUMNS, ("project_id", "event_id")
)


async def write_budget_models(conn: asyncpg.Connection, rows: ReadModelRows) -> None:
    """Merge one batch's step and budget rows (inside the batch transaction)."""
    merges: list[tuple[RowSource, Sequence[Any], str]] = [
        (RUN_STEP_ROWS, rows.steps, UPSERT_RUN_STEPS),
        (BUDGET_STATE_ROWS, rows.budget_states, UPSERT_BUDGET_STATE),
        (BUDGET_TRIP_ROWS, rows.budget_trips, INSERT_BUDGET_TRIPS),
    ]
    await merge_all(conn, merges)

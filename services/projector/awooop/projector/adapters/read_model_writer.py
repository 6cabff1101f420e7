"""The bulk path: one merge statement per read model and batch, its rows `unnest`ed
from array parameters (adapters/row_source.py).

Each merge is an `INSERT … SELECT … ON CONFLICT` checked by the tenant policy; the
caller has already set the batch's tenants on the transaction.
"""

from __future__ import annotations

import asyncpg

from awooop.projector.adapters.approval_writer import write_approvals
from awooop.projector.adapters.budget_writer import write_budget_models
from awooop.projector.adapters.channel_writer import write_channel_models
from awooop.projector.adapters.contract_writer import write_contract_models
from awooop.projector.adapters.mcp_call_writer import write_mcp_calls
from awooop.projector.adapters.row_source import RowSource
from awooop.projector.domain.rows import (
    RUN_COLUMNS,
    RUN_WRITE_ONCE,
    TIMELINE_COLUMNS,
    ReadModelRows,
)

TIMELINE_ROWS = RowSource.declared(
    "timeline_rows",
    "project_id text, run_id uuid, event_id uuid, occurred_at timestamptz, event_type text, "
    "stream_type text, stream_id text, stream_seq integer, actor text, summary jsonb",
)
RUN_ROWS = RowSource.declared(
    "run_rows",
    "project_id text, run_id uuid, state text, last_stream_seq integer, agent_id text, "
    "platform_subject_id text, chat_id text, channel_type text, mode text, revision text, "
    "started_at timestamptz, completed_at timestamptz, reply text, suppressed boolean, "
    "error_code text, trigger_text text",
)

_TIMELINE_LIST = ", ".join(TIMELINE_COLUMNS)
# Rows are merged in key order: writers that share rows (projector replicas, the
# workers of a rebuild) then take their row locks in one order and never deadlock.
INSERT_TIMELINE = (
    f"INSERT INTO timeline ({_TIMELINE_LIST}) SELECT {_TIMELINE_LIST} FROM {TIMELINE_ROWS.sql} "
    "ORDER BY project_id, run_id, event_id "
    "ON CONFLICT (project_id, run_id, event_id) DO NOTHING"
)

_RUN_LIST = ", ".join(RUN_COLUMNS)
_NEWER = "excluded.last_stream_seq > r.last_stream_seq"
_MERGED = {c: f"coalesce(r.{c}, excluded.{c})" for c in RUN_WRITE_ONCE}
# Only rows that would change are updated: redelivered batches leave no dead tuples.
UPSERT_RUNS = (
    f"INSERT INTO runs AS r ({_RUN_LIST}) SELECT {_RUN_LIST} FROM {RUN_ROWS.sql} "
    "ORDER BY project_id, run_id "
    "ON CONFLICT (project_id, run_id) DO UPDATE SET "
    f"state = CASE WHEN {_NEWER} THEN excluded.state ELSE r.state END, "
    "last_stream_seq = greatest(r.last_stream_seq, excluded.last_stream_seq), "
    + ", ".join(f"{c} = {merged}" for c, merged in _MERGED.items())
    + f" WHERE {_NEWER} OR "
    + " OR ".join(f"(r.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in RUN_WRITE_ONCE)
)


async def write_read_models(conn: asyncpg.Connection, rows: ReadModelRows) -> None:
    """Merge one batch's rows into every read model (inside the batch transaction)."""
    await write_contract_models(conn, rows.contracts, rows.contract_revisions)
    await write_budget_models(conn, rows)
    await write_channel_models(conn, rows)
    await write_mcp_calls(conn, rows.mcp_calls)
    await write_approvals(conn, rows.approvals)
    if rows.timeline:
        timeline = [
            (
                t.project_id,
                t.run_id,
                t.event_id,
                t.occurred_at,
                t.event_type,
                t.stream_type,
                t.stream_id,
                t.stream_seq,
                t.actor,
                t.summary,
            )
            for t in rows.timeline
        ]
        await conn.execute(INSERT_TIMELINE, *TIMELINE_ROWS.arguments(timeline))
    if rows.runs:
        await conn.execute(UPSERT_RUNS, *RUN_ROWS.arguments([run.values() for run in rows.runs]))

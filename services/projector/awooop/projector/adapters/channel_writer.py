"""The bulk path of the channel read models, `channel_events` and `outbound_messages`:
one merge statement per table, in key order, as read_model_writer.py does.

The merges apply the fold's rules between a staged row and the stored one, so a row
fed by several topics ends the same whichever arrives first: a column one event owns
keeps its first non-null value; the runtime's facts about a message keep the least
run id; a message's delivery is the one of the report with the lowest `event_id`.
Only rows that change are updated, so a redelivered batch leaves no dead tuples.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.projector.adapters.row_source import RowSource, merge_all
from awooop.projector.domain.channel_events import (
    CHANNEL_EVENT_COLUMNS,
    INGRESS_COLUMNS,
    RUNTIME_COLUMNS,
)
from awooop.projector.domain.outbound import DELIVERY_COLUMNS, OUTBOUND_COLUMNS, REQUEST_COLUMNS
from awooop.projector.domain.rows import ReadModelRows

CHANNEL_EVENT_ROWS = RowSource.declared(
    "channel_events_rows",
    "project_id text, event_id uuid, kind text, channel_type text, provider_event_id text, "
    "platform_subject_id text, chat_id text, thread_id text, message_id text, "
    "display_text text, reason text, code text, record_key text, duplicate_of uuid, "
    "record_partition integer, record_offset bigint, received_at timestamptz, "
    "occurred_at timestamptz, run_id uuid, queued_on uuid, busy_with uuid",
)
OUTBOUND_ROWS = RowSource.declared(
    "outbound_messages_rows",
    "project_id text, run_id uuid, event_id uuid, kind text, channel_type text, chat_id text, "
    "text text, deliver_before timestamptz, occurred_at timestamptz, thread_id text, "
    "reply_to text, button_labels text[], edit_of uuid, status text, "
    "provider_message_ids text[], attempts integer, code text, reason text, "
    "reported_at timestamptz, report_event_id uuid",
)


def _filled(column: str) -> str:
    return f"(t.{column} IS NULL AND excluded.{column} IS NOT NULL)"


def _merge(
    table: str, source: RowSource, columns: Sequence[str], key: Sequence[str], sets: dict[str, str]
) -> str:
    listed, keys = ", ".join(columns), ", ".join(key)
    return (
        f"INSERT INTO {table} AS t ({listed}) SELECT {listed} FROM {source.sql} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{column} = {value}" for column, value in sets.items())
    )


_CHANNEL_SETS = {c: f"coalesce(t.{c}, excluded.{c})" for c in INGRESS_COLUMNS} | {
    c: f"least(t.{c}, excluded.{c})" for c in RUNTIME_COLUMNS
}
UPSERT_CHANNEL_EVENTS = (
    _merge(
        "channel_events",
        CHANNEL_EVENT_ROWS,
        CHANNEL_EVENT_COLUMNS,
        ("project_id", "event_id"),
        _CHANNEL_SETS,
    )
    + " WHERE "
    + " OR ".join(
        [_filled(c) for c in (*INGRESS_COLUMNS, *RUNTIME_COLUMNS)]
        + [f"excluded.{c} < t.{c}" for c in RUNTIME_COLUMNS]
    )
)

_REPORT_WINS = (
    "(excluded.report_event_id IS NOT NULL AND "
    "(t.report_event_id IS NULL OR excluded.report_event_id < t.report_event_id))"
)
_OUTBOUND_SETS = {c: f"coalesce(t.{c}, excluded.{c})" for c in REQUEST_COLUMNS} | {
    c: f"CASE WHEN {_REPORT_WINS} THEN excluded.{c} ELSE t.{c} END" for c in DELIVERY_COLUMNS
}
UPSERT_OUTBOUND = (
    _merge(
        "outbound_messages",
        OUTBOUND_ROWS,
        OUTBOUND_COLUMNS,
        ("project_id", "run_id", "event_id"),
        _OUTBOUND_SETS,
    )
    + " WHERE "
    + " OR ".join([_filled(c) for c in REQUEST_COLUMNS] + [_REPORT_WINS])
)


async def write_channel_models(conn: asyncpg.Connection, rows: ReadModelRows) -> None:
    """Merge one batch's channel-event and outbound rows (inside the batch transaction)."""
    await merge_all(
        conn,
        [
            (CHANNEL_EVENT_ROWS, rows.channel_events, UPSERT_CHANNEL_EVENTS),
            (OUTBOUND_ROWS, rows.outbound, UPSERT_OUTBOUND),
        ],
    )

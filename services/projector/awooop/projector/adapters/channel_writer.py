"""The bulk path of the channel read models, `channel_events` and `outbound_messages`:
staged by COPY, merged by one statement per table, in key order, as read_model_writer.py
does.

The merges apply the fold's rules between a staged row and the stored one, so a row
fed by several topics ends the same whichever arrives first: a column one event owns
keeps its first non-null value; the runtime's facts about a message keep the least
run id; a message's delivery is the one of the report with the lowest `event_id`.
Only rows that change are updated, so a redelivered batch leaves no dead tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from awooop.projector.domain.channel_events import (
    CHANNEL_EVENT_COLUMNS,
    INGRESS_COLUMNS,
    RUNTIME_COLUMNS,
)
from awooop.projector.domain.outbound import DELIVERY_COLUMNS, OUTBOUND_COLUMNS, REQUEST_COLUMNS
from awooop.projector.domain.rows import ReadModelRows

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS channel_events_stage (
    project_id text, event_id uuid, kind text, channel_type text, provider_event_id text,
    platform_subject_id text, chat_id text, thread_id text, message_id text,
    display_text text, reason text, code text, record_key text, duplicate_of uuid,
    record_partition integer, record_offset bigint, received_at timestamptz,
    occurred_at timestamptz, run_id uuid, queued_on uuid, busy_with uuid
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS outbound_messages_stage (
    project_id text, run_id uuid, event_id uuid, kind text, channel_type text, chat_id text,
    text text, deliver_before timestamptz, occurred_at timestamptz, thread_id text,
    reply_to text, button_labels text[], edit_of uuid, status text,
    provider_message_ids text[], attempts integer, code text, reason text,
    reported_at timestamptz, report_event_id uuid
) ON COMMIT DELETE ROWS;
"""


def _filled(column: str) -> str:
    return f"(t.{column} IS NULL AND excluded.{column} IS NOT NULL)"


def _merge(
    table: str, stage: str, columns: Sequence[str], key: Sequence[str], sets: dict[str, str]
) -> str:
    listed, keys = ", ".join(columns), ", ".join(key)
    return (
        f"INSERT INTO {table} AS t ({listed}) SELECT {listed} FROM {stage} "
        f"ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{column} = {value}" for column, value in sets.items())
    )


_CHANNEL_SETS = {c: f"coalesce(t.{c}, excluded.{c})" for c in INGRESS_COLUMNS} | {
    c: f"least(t.{c}, excluded.{c})" for c in RUNTIME_COLUMNS
}
UPSERT_CHANNEL_EVENTS = (
    _merge(
        "channel_events",
        "channel_events_stage",
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
        "outbound_messages_stage",
        OUTBOUND_COLUMNS,
        ("project_id", "run_id", "event_id"),
        _OUTBOUND_SETS,
    )
    + " WHERE "
    + " OR ".join([_filled(c) for c in REQUEST_COLUMNS] + [_REPORT_WINS])
)


async def write_channel_models(conn: asyncpg.Connection, rows: ReadModelRows) -> None:
    """Merge one batch's channel-event and outbound rows (inside the batch transaction)."""
    merges: list[tuple[str, Sequence[str], Sequence[Any], str]] = [
        ("channel_events_stage", CHANNEL_EVENT_COLUMNS, rows.channel_events, UPSERT_CHANNEL_EVENTS),
        ("outbound_messages_stage", OUTBOUND_COLUMNS, rows.outbound, UPSERT_OUTBOUND),
    ]
    if not any(staged for _, _, staged, _ in merges):
        return
    await conn.execute(STAGING_DDL)
    for stage, columns, staged, merge in merges:
        if staged:
            records = [row.values() for row in staged]
            await conn.copy_records_to_table(stage, columns=columns, records=records)
            await conn.execute(merge)

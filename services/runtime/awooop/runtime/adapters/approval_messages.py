"""The `approval_messages` table: what the runtime keeps of each approval.

Read in one statement per batch (after the batch locked the runs the approvals belong
to: every writer of a row holds its run's lock) and written in one, each row as the
batch's fold left it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import asyncpg

from awooop.runtime.domain.approval_messages import ApprovalMessage

_COLUMNS = (
    "approval_id, project_id, run_id, call_id, last_seq, outcome, request_event_id, "
    "request_text, expires_at, approvals_required, rejections_required, "
    "approved_by::text AS approved_by, rejected_by::text AS rejected_by"
)


async def load(
    conn: asyncpg.Connection, approval_ids: Sequence[uuid.UUID]
) -> list[ApprovalMessage]:
    """The kept approvals among `approval_ids` (those the runtime never kept are absent)."""
    if not approval_ids:
        return []
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM approval_messages WHERE approval_id = ANY($1::uuid[])",
        list(approval_ids),
    )
    return [_kept(row) for row in rows]


async def store(conn: asyncpg.Connection, kept: Sequence[ApprovalMessage]) -> None:
    """Write `kept` (one row per approval) in one statement."""
    if not kept:
        return
    await conn.execute(
        "INSERT INTO approval_messages (approval_id, project_id, run_id, call_id, last_seq, "
        " outcome, request_event_id, request_text, expires_at, approvals_required, "
        " rejections_required, approved_by, rejected_by) "
        "SELECT u.approval_id, u.project_id, u.run_id, u.call_id, u.last_seq, u.outcome, "
        " u.request_event_id, u.request_text, u.expires_at, u.approvals_required, "
        " u.rejections_required, u.approved_by::jsonb, u.rejected_by::jsonb "
        "FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::int[], $6::text[], "
        " $7::uuid[], $8::text[], $9::timestamptz[], $10::int[], $11::int[], $12::text[], "
        " $13::text[]) AS u(approval_id, project_id, run_id, call_id, last_seq, outcome, "
        "  request_event_id, request_text, expires_at, approvals_required, "
        "  rejections_required, approved_by, rejected_by) "
        "ON CONFLICT (approval_id) DO UPDATE SET last_seq = excluded.last_seq, "
        " outcome = excluded.outcome, request_event_id = excluded.request_event_id, "
        " request_text = excluded.request_text, expires_at = excluded.expires_at, "
        " approvals_required = excluded.approvals_required, "
        " rejections_required = excluded.rejections_required, "
        " approved_by = excluded.approved_by, rejected_by = excluded.rejected_by",
        [k.approval_id for k in kept],
        [k.project_id for k in kept],
        [k.run_id for k in kept],
        [k.call_id for k in kept],
        [k.last_seq for k in kept],
        [k.outcome for k in kept],
        [k.request_event_id for k in kept],
        [k.request_text for k in kept],
        [k.expires_at for k in kept],
        [k.approvals_required for k in kept],
        [k.rejections_required for k in kept],
        [json.dumps(list(k.approved_by)) for k in kept],
        [json.dumps(list(k.rejected_by)) for k in kept],
    )


def _kept(row: asyncpg.Record) -> ApprovalMessage:
    values = dict(row)
    values["approved_by"] = tuple(json.loads(values["approved_by"]))
    values["rejected_by"] = tuple(json.loads(values["rejected_by"]))
    return ApprovalMessage(**values)

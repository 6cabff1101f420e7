"""The bulk path of `approvals`: one merge statement, in key order, as read_model_writer.py
does.

The merge applies the fold's rules (domain/approvals.py) between a staged row and the
stored one: a request column keeps its first non-null value, the vote counts their
highest, the votes are the union of both arrays by `event_id` sorted by `(at,
event_id)`, and the decision columns are the event's with the highest `(rank of its
state, decided_at, decided_event_id)`. The vote order is cast, not compared as text: a
timestamp and a uuid sort the same under every collation, as they do in Python. Only
rows that change are updated, so a redelivered batch leaves no dead tuples.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.projector.adapters.row_source import RowSource, merge_all
from awooop.projector.domain.approvals import (
    APPROVAL_COLUMNS,
    COUNT_COLUMNS,
    DECISION_COLUMNS,
    REQUEST_COLUMNS,
    STATE_RANKS,
    ApprovalRow,
)

APPROVAL_ROWS = RowSource.declared(
    "approvals_rows",
    "project_id text, approval_id uuid, run_id uuid, call_id text, tool text, arguments jsonb, "
    "argument_hash text, action_hash text, scope text, mode text, policy_revision text, "
    "approvers text[], approvals_required integer, rejections_required integer, "
    "requester text, expires_at timestamptz, requested_at timestamptz, approvals integer, "
    "rejections integer, votes jsonb, state text, outcome_code text, outcome_reason text, "
    "decided_by text[], decided_at timestamptz, decided_event_id uuid, token_id text, "
    "token_expires_at timestamptz",
)


def _rank(row: str) -> str:
    cases = " ".join(f"WHEN '{state}' THEN {rank}" for state, rank in STATE_RANKS.items())
    return f"CASE {row}.state {cases} END"


def _decision_key(row: str) -> str:
    return f"({_rank(row)}, {row}.decided_at, {row}.decided_event_id)"


_DECISION_WINS = (
    "(excluded.decided_event_id IS NOT NULL AND (t.decided_event_id IS NULL OR "
    f"{_decision_key('excluded')} > {_decision_key('t')}))"
)
_UNION_OF_VOTES = (
    "(SELECT coalesce(jsonb_agg(v ORDER BY (v->>'at')::timestamptz, (v->>'event_id')::uuid), "
    "'[]'::jsonb) FROM (SELECT DISTINCT ON (e.v->>'event_id') e.v AS v "
    "FROM jsonb_array_elements(t.votes || excluded.votes) AS e(v) "
    "ORDER BY e.v->>'event_id') AS u)"
)
_NEW_VOTE = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements(excluded.votes) AS e(v) WHERE NOT "
    "t.votes @> jsonb_build_array(jsonb_build_object('event_id', e.v->'event_id')))"
)
_SETS = (
    {c: f"coalesce(t.{c}, excluded.{c})" for c in REQUEST_COLUMNS}
    | {c: f"greatest(t.{c}, excluded.{c})" for c in COUNT_COLUMNS}
    | {"votes": f"CASE WHEN {_NEW_VOTE} THEN {_UNION_OF_VOTES} ELSE t.votes END"}
    | {c: f"CASE WHEN {_DECISION_WINS} THEN excluded.{c} ELSE t.{c} END" for c in DECISION_COLUMNS}
)
_LISTED = ", ".join(APPROVAL_COLUMNS)
UPSERT_APPROVALS = (
    f"INSERT INTO approvals AS t ({_LISTED}) SELECT {_LISTED} FROM {APPROVAL_ROWS.sql} "
    "ORDER BY project_id, approval_id ON CONFLICT (project_id, approval_id) DO UPDATE SET "
    + ", ".join(f"{column} = {value}" for column, value in _SETS.items())
    + " WHERE "
    + " OR ".join(
        [f"(t.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in REQUEST_COLUMNS]
        + [f"excluded.{c} > t.{c}" for c in COUNT_COLUMNS]
        + [_NEW_VOTE, _DECISION_WINS]
    )
)


async def write_approvals(conn: asyncpg.Connection, rows: Sequence[ApprovalRow]) -> None:
    """Merge one batch's `approvals` rows (inside the batch transaction)."""
    await merge_all(conn, [(APPROVAL_ROWS, rows, UPSERT_APPROVALS)])

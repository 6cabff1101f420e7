"""The `tool_calls` table: decisions, claims and outcomes, each one statement.

Status moves `admitted → executing → succeeded | failed` (or `admitted →
failed` when the deadline passed before a start; `executing → blocked` when
gate 1 finds the tool changed on its server right before the call). `blocked`
is final from the start, and `awaiting_approval` holds a call for gate 5 until
an approval moves it to `admitted` (or `blocked`, refused), remembering the
approval's id. Every transition is guarded by the status it leaves, so a call is
claimed by one executor and answered once. A batch's decisions, new and approved,
are one statement. `next_stream_seq` is the `stream_seq` of the call's next event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from awooop.contracts.registries.errors import E_MCP_CALL_EXPIRED, E_MCP_CALL_UNKNOWN
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import (
    NewEvent,
    append_arguments,
    appending,
    version_conflicts,
)
from awooop.mcp_gateway.domain.approvals import HeldCall
from awooop.mcp_gateway.domain.calls import OUTCOME_SEQ, ToolCall

Decision = Literal["admitted", "blocked", "awaiting_approval"]
Finished = Literal["succeeded", "failed", "blocked"]


@dataclass(frozen=True, slots=True)
class ClaimedCall:
    """A call taken from the table, with the catalogue revision that admitted it."""

    call: ToolCall
    revision: str
    approval_id: uuid.UUID | None = None
    """The approval that let the call through gate 5; None for a call never held."""
    next_seq: int = OUTCOME_SEQ
    """The `stream_seq` of the call's next event."""


def outcome_event(envelope: Any) -> NewEvent:
    """The stored form of a gateway outcome: on `gateway.events`, keyed by its run."""
    return to_new_event(envelope, Topics.GATEWAY_EVENTS, envelope.correlation_id)


@dataclass(frozen=True, slots=True)
class Decided:
    """One call's gate decision, as recorded: of a new request, or of a held call an
    approval was presented for (`approval_id` set)."""

    call: ToolCall
    status: Decision
    revision: str
    """The admitting tool revision (the executor runs that one), or the revisions read."""
    code: str | None
    approval_id: uuid.UUID | None = None
    next_seq: int = OUTCOME_SEQ
    """The `stream_seq` the call's next event will take."""


async def undecided(conn: asyncpg.Connection, call_ids: Sequence[str]) -> set[str]:
    """Which of `call_ids` have no decision yet (a redelivered request is decided once)."""
    if not call_ids:
        return set()
    rows = await conn.fetch(
        "SELECT call_id FROM tool_calls WHERE call_id = ANY($1::text[])", list(call_ids)
    )
    return set(call_ids) - {row["call_id"] for row in rows}


async def held(conn: asyncpg.Connection, call_ids: Sequence[str]) -> dict[str, HeldCall]:
    """The calls of `call_ids` still `awaiting_approval`, by call id (one `SELECT`)."""
    if not call_ids:
        return {}
    rows = await conn.fetch(
        "SELECT call_id, run_id, project_id, tool, arguments::text AS arguments, "
        "execute_before, trace_id, request_event_id, agent_ref, next_stream_seq "
        "FROM tool_calls WHERE call_id = ANY($1::text[]) AND status = 'awaiting_approval'",
        list(set(call_ids)),
    )
    return {row["call_id"]: HeldCall(_call(row), row["next_stream_seq"]) for row in rows}


async def record_decisions(conn: asyncpg.Connection, decided: Sequence[Decided]) -> set[str]:
    """Record a batch's decisions in one statement; the call ids recorded by it.

    A new request's row is inserted; a call id another process decided meanwhile is
    left as that process decided it. A decision on an approved call (`approval_id`
    set) updates the existing row, only while it is still `awaiting_approval`, and
    never inserts one. A call id appears at most once in `decided`.
    """
    if not decided:
        return set()
    calls = [d.call for d in decided]
    rows = await conn.fetch(
        """
        INSERT INTO tool_calls AS t (call_id, run_id, project_id, tool, arguments,
                                     execute_before, trace_id, request_event_id, status,
                                     revision, outcome_code, agent_ref, approval_id,
                                     next_stream_seq)
        SELECT c, r, p, tl, a::jsonb, e, tr, q, st, rv, oc, ag, ap, ns
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                    $6::timestamptz[], $7::text[], $8::uuid[], $9::text[], $10::text[],
                    $11::text[], $12::text[], $13::uuid[], $14::int[])
             AS d(c, r, p, tl, a, e, tr, q, st, rv, oc, ag, ap, ns)
        WHERE d.ap IS NULL OR EXISTS (SELECT 1 FROM tool_calls h WHERE h.call_id = d.c)
        ON CONFLICT (call_id) DO UPDATE SET
            status = excluded.status,
            revision = excluded.revision,
            outcome_code = excluded.outcome_code,
            approval_id = excluded.approval_id,
            next_stream_seq = excluded.next_stream_seq,
            execute_before = excluded.execute_before
        WHERE t.status = 'awaiting_approval' AND excluded.approval_id IS NOT NULL
        RETURNING call_id
        """,
        [c.call_id for c in calls],
        [c.run_id for c in calls],
        [c.project_id for c in calls],
        [c.tool for c in calls],
        # A refused call is never run: its arguments (which may be unstorable, the
        # reason it was refused) are not kept. An approved call's row keeps its own.
        [json.dumps(d.call.arguments) if d.status != "blocked" else "{}" for d in decided],
        [c.execute_before for c in calls],
        [c.trace_id for c in calls],
        [c.request_event_id for c in calls],
        [d.status for d in decided],
        [d.revision for d in decided],
        [d.code for d in decided],
        [c.agent_ref for c in calls],
        [d.approval_id for d in decided],
        [d.next_seq for d in decided],
    )
    return {row["call_id"] for row in rows}


_COLUMN_NAMES = (
    "call_id",
    "run_id",
    "project_id",
    "tool",
    "arguments",
    "execute_before",
    "trace_id",
    "request_event_id",
    "revision",
    "status",
    "agent_ref",
    "approval_id",
    "next_stream_seq",
)
_COLUMN_COUNT = len(_COLUMN_NAMES)
_COLUMNS = ", ".join(_COLUMN_NAMES)
_RETURNING = "RETURNING " + ", ".join(
    "t.arguments::text AS arguments" if c == "arguments" else f"t.{c}" for c in _COLUMN_NAMES
)


_CLAIM_CTES = (
    """
due AS (
    SELECT call_id FROM tool_calls
    WHERE status = 'admitted' AND execute_before > now()
    ORDER BY execute_before
    LIMIT {limit}
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tool_calls t SET status = 'executing', started_at = now(), claimed_by = $1
    FROM due WHERE t.call_id = due.call_id
"""
    + _RETURNING
    + """
)"""
)

_CLAIMED_ROWS = f"""
SELECT 'claimed' AS kind, {_COLUMNS} FROM claimed
UNION ALL
SELECT 'expired', {", ".join(["NULL"] * _COLUMN_COUNT)}
WHERE EXISTS (
    SELECT 1 FROM tool_calls WHERE status = 'admitted' AND execute_before <= now()
)"""

_CLAIM = f"WITH {_CLAIM_CTES.format(limit='$2')} {_CLAIMED_ROWS}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claim: calls to run now, and whether admitted calls wait past their deadline
    (`expire_due` answers them)."""

    to_run: list[ClaimedCall]
    expired_waiting: bool


def _claimed_rows(rows: Sequence[asyncpg.Record]) -> Claimed:
    return Claimed(
        to_run=[_claimed(row) for row in rows if row["kind"] == "claimed"],
        expired_waiting=any(row["kind"] == "expired" for row in rows),
    )


async def claim_due(conn: asyncpg.Connection, executor_id: str, limit: int) -> Claimed:
    """Claim up to `limit` admitted calls still within their deadline, earliest deadline
    first, for `executor_id`: one statement."""
    return _claimed_rows(await conn.fetch(_CLAIM, executor_id, limit))


async def expire_due(conn: asyncpg.Connection, limit: int) -> list[ClaimedCall]:
    """Mark up to `limit` admitted calls whose `execute_before` passed (by the database's
    clock) failed with `E-MCP-CALL-EXPIRED`: they are never started. The caller appends
    their answers in the same transaction."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT call_id FROM tool_calls
            WHERE status = 'admitted' AND execute_before <= now()
            ORDER BY execute_before
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE tool_calls t SET status = 'failed', outcome_code = $1, finished_at = now()
        FROM due WHERE t.call_id = due.call_id
        """
        + _RETURNING,
        E_MCP_CALL_EXPIRED.code,
        limit,
    )
    return [_claimed(row) for row in rows]


_FINISH_AND_CLAIM = f"""
WITH finished AS (
    UPDATE tool_calls t SET status = o.status, outcome_code = o.code, finished_at = now()
    FROM unnest($3::text[], $4::text[], $5::text[]) AS o(call_id, status, code)
    WHERE t.call_id = o.call_id AND t.status = 'executing' AND t.claimed_by = $1
    RETURNING t.call_id
), {appending(6, where="e.stream_id IN (SELECT call_id FROM finished)")},
{_CLAIM_CTES.format(limit="$2")}
{_CLAIMED_ROWS}
UNION ALL
SELECT 'finished', call_id, {", ".join(["NULL"] * (_COLUMN_COUNT - 1))} FROM finished
"""


@dataclass(frozen=True, slots=True)
class FinishedAndClaimed:
    held: set[str]
    """The call ids finished: those still `executing` under this executor."""
    claimed: Claimed


async def finish_and_claim(
    conn: asyncpg.Connection,
    executor_id: str,
    outcomes: Sequence[tuple[str, Finished, str | None]],
    events: Sequence[NewEvent],
    limit: int,
) -> FinishedAndClaimed:
    """In one statement: close the executor's calls `(call_id, status, code)`, append the
    events of those it still held (a call's events are its stream: `stream_id` is its
    id), and claim up to `limit` due calls as `claim_due` does.

    A call no longer `executing` under `executor_id` (declared unknown while this
    process was cut off from the database) is left as it is, and its events are not
    appended. `VersionConflict` when an event's `(stream_id, stream_seq)` is taken.
    """
    with version_conflicts():
        rows = await conn.fetch(
            _FINISH_AND_CLAIM,
            executor_id,
            limit,
            [o[0] for o in outcomes],
            [o[1] for o in outcomes],
            [o[2] for o in outcomes],
            *append_arguments(events),
        )
    return FinishedAndClaimed(
        held={row["call_id"] for row in rows if row["kind"] == "finished"},
        claimed=_claimed_rows(rows),
    )


async def other_claimers(conn: asyncpg.Connection, executor_id: str) -> list[str]:
    """Executors other than `executor_id` that hold calls in `executing`."""
    rows = await conn.fetch(
        "SELECT DISTINCT claimed_by FROM tool_calls "
        "WHERE status = 'executing' AND claimed_by <> $1",
        executor_id,
    )
    return [row["claimed_by"] for row in rows]


async def fail_abandoned(conn: asyncpg.Connection, claimer: str) -> list[ClaimedCall]:
    """Mark the calls a gone executor left `executing` failed with `E-MCP-CALL-UNKNOWN`."""
    rows = await conn.fetch(
        """
        UPDATE tool_calls t SET status = 'failed', outcome_code = $2, finished_at = now()
        WHERE t.status = 'executing' AND t.claimed_by = $1
        """
        + _RETURNING,
        claimer,
        E_MCP_CALL_UNKNOWN.code,
    )
    return [_claimed(row) for row in rows]


def _claimed(row: asyncpg.Record) -> ClaimedCall:
    return ClaimedCall(_call(row), row["revision"], row["approval_id"], row["next_stream_seq"])


MAX_EXACT_INT = 2**53 - 1
"""The largest integer RFC 8785 writes exactly (gate 3 refused every larger one)."""


def _stored_number(text: str) -> int | float:
    # jsonb writes a float with an integral value of 2**53 or more (1e20) as digits only;
    # gate 3 refused every integer that large, so such digits were a float.
    value = int(text)
    return value if abs(value) <= MAX_EXACT_INT else float(text)


def stored_arguments(text: str) -> dict[str, Any]:
    """The arguments as the agent produced them, from their `jsonb` text: every value
    reads back equal (a float stays a float), so their action hash is unchanged."""
    value: dict[str, Any] = json.loads(text, parse_int=_stored_number)
    return value


def _call(row: asyncpg.Record) -> ToolCall:
    return ToolCall(
        call_id=row["call_id"],
        run_id=row["run_id"],
        project_id=row["project_id"],
        tool=row["tool"],
        arguments=stored_arguments(row["arguments"]),
        execute_before=row["execute_before"],
        trace_id=row["trace_id"],
        request_event_id=row["request_event_id"],
        agent_ref=row["agent_ref"],
    )

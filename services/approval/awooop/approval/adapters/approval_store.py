"""The approval service's tables: requests (locked while a vote or an expiry decides
them), what it knows of runs, and holds waiting for their run. One statement per table
per batch."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.approval.domain.requests import ApprovalRequest, Approver, CastVote


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request with its stream position (`seq`: its last event's) and trace."""

    request: ApprovalRequest
    seq: int
    trace_id: str


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a request needs of its run: who asked, by when the run ends, if it ended."""

    run_id: str
    project_id: str
    requester: str | None
    deadline: dt.datetime | None
    ended: str | None = None


@dataclass(frozen=True, slots=True)
class HeldCall:
    """A `gateway.approval_required` (its record's bytes) waiting for `run.started`."""

    approval_id: uuid.UUID
    run_id: str
    envelope: bytes


_COLUMNS = """approval_id, project_id, run_id, call_id, action_hash, policy_revision,
    approvers::text AS approvers, approvals_required, rejections_required, requester,
    expires_at, state, votes::text AS votes, decided_at, seq, trace_id"""


def _stored(row: asyncpg.Record) -> StoredRequest:
    approvers = tuple(
        Approver(approver_id, frozenset(who["chat_subjects"]), who["api_subject"])
        for approver_id, who in json.loads(row["approvers"]).items()
    )
    votes = tuple(
        CastVote(
            v["approver_id"], v["vote"], v["via"], v["subject"], dt.datetime.fromisoformat(v["at"])
        )
        for v in json.loads(row["votes"])
    )
    request = ApprovalRequest(
        approval_id=row["approval_id"],
        project_id=row["project_id"],
        run_id=row["run_id"],
        call_id=row["call_id"],
        action_hash=row["action_hash"],
        policy_revision=row["policy_revision"],
        approvers=approvers,
        approvals_required=row["approvals_required"],
        rejections_required=row["rejections_required"],
        requester=row["requester"],
        expires_at=row["expires_at"],
        state=row["state"],
        votes=votes,
        decided_at=row["decided_at"],
    )
    return StoredRequest(request, row["seq"], row["trace_id"])


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def lock_requests(
    conn: asyncpg.Connection, approval_ids: Collection[uuid.UUID], run_ids: Collection[str] = ()
) -> dict[uuid.UUID, StoredRequest]:
    """The requests named, and every pending request of `run_ids`, locked in id order."""
    if not approval_ids and not run_ids:
        return {}
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM approval_requests
        WHERE approval_id = ANY($1::uuid[]) OR (run_id = ANY($2::text[]) AND state = 'pending')
        ORDER BY approval_id
        FOR UPDATE
        """,
        list(approval_ids),
        list(run_ids),
    )
    return {row["approval_id"]: _stored(row) for row in rows}


async def lock_due(conn: asyncpg.Connection, limit: int) -> tuple[dt.datetime, list[StoredRequest]]:
    """The database's time, and up to `limit` pending requests expired by it, locked
    (skipping those another process holds)."""
    now = await conn.fetchval("SELECT now()")
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM approval_requests
        WHERE state = 'pending' AND expires_at <= $1
        ORDER BY expires_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        now,
        limit,
    )
    return now, [_stored(row) for row in rows]


async def save_requests(conn: asyncpg.Connection, stored: Sequence[StoredRequest]) -> None:
    """Insert or update each request as its latest events left it."""
    if not stored:
        return
    requests = [s.request for s in stored]
    await conn.execute(
        """
        INSERT INTO approval_requests (approval_id, project_id, run_id, call_id, action_hash,
            policy_revision, approvers, approvals_required, rejections_required, requester,
            expires_at, state, votes, decided_at, seq, trace_id)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::jsonb[], $8::int[], $9::int[], $10::text[], $11::timestamptz[],
            $12::text[], $13::jsonb[], $14::timestamptz[], $15::int[], $16::text[])
        ON CONFLICT (approval_id) DO UPDATE
            SET state = excluded.state, votes = excluded.votes,
                decided_at = excluded.decided_at, seq = excluded.seq
        """,
        [r.approval_id for r in requests],
        [r.project_id for r in requests],
        [r.run_id for r in requests],
        [r.call_id for r in requests],
        [r.action_hash for r in requests],
        [r.policy_revision for r in requests],
        [json.dumps(_approvers_json(r)) for r in requests],
        [r.approvals_required for r in requests],
        [r.rejections_required for r in requests],
        [r.requester for r in requests],
        [r.expires_at for r in requests],
        [r.state for r in requests],
        [json.dumps([_vote_json(v) for v in r.votes]) for r in requests],
        [r.decided_at for r in requests],
        [s.seq for s in stored],
        [s.trace_id for s in stored],
    )


def _approvers_json(request: ApprovalRequest) -> dict[str, Any]:
    return {
        a.approver_id: {"chat_subjects": sorted(a.chat_subjects), "api_subject": a.api_subject}
        for a in request.approvers
    }


def _vote_json(vote: CastVote) -> dict[str, Any]:
    return {
        "approver_id": vote.approver_id,
        "vote": vote.vote,
        "via": vote.via,
        "subject": vote.subject,
        "at": vote.at.isoformat(),
    }


RUN_LOCKS = 0x61707276
"""The first key of the per-run advisory locks of approval batches (two int4 keys)."""


async def lock_runs(conn: asyncpg.Connection, run_ids: Collection[str]) -> None:
    """Hold, until the transaction ends, one lock per run of `run_ids`, taken in a fixed
    order: a batch that holds a call for a run, one that starts or ends it and one that
    releases its holds are never interleaved, on whichever process each runs (a hold
    inserted after the run's start committed would wait forever)."""
    if not run_ids:
        return
    await conn.execute(
        "SELECT count(pg_advisory_xact_lock($1, k)) "
        "FROM (SELECT DISTINCT hashtext(r) AS k FROM unnest($2::text[]) r ORDER BY k) keys",
        RUN_LOCKS,
        list(run_ids),
    )


async def runs(conn: asyncpg.Connection, run_ids: Collection[str]) -> dict[str, RunFacts]:
    if not run_ids:
        return {}
    rows = await conn.fetch(
        "SELECT run_id, project_id, requester, deadline, ended FROM approval_runs "
        "WHERE run_id = ANY($1::text[])",
        list(run_ids),
    )
    return {
        row["run_id"]: RunFacts(
            row["run_id"], row["project_id"], row["requester"], row["deadline"], row["ended"]
        )
        for row in rows
    }


async def save_runs(conn: asyncpg.Connection, facts: Iterable[RunFacts]) -> None:
    """Record runs started or ended (an end is kept once known)."""
    rows = list(facts)
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO approval_runs (run_id, project_id, requester, deadline, ended)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
        ON CONFLICT (run_id) DO UPDATE
            SET requester = coalesce(excluded.requester, approval_runs.requester),
                deadline = coalesce(excluded.deadline, approval_runs.deadline),
                ended = coalesce(approval_runs.ended, excluded.ended)
        """,
        [f.run_id for f in rows],
        [f.project_id for f in rows],
        [f.requester for f in rows],
        [f.deadline for f in rows],
        [f.ended for f in rows],
    )


async def held_for(conn: asyncpg.Connection, run_ids: Collection[str]) -> list[HeldCall]:
    """Holds waiting for any of `run_ids`, taken out of the table (in this transaction)."""
    if not run_ids:
        return []
    rows = await conn.fetch(
        "DELETE FROM held_calls WHERE run_id = ANY($1::text[]) "
        "RETURNING approval_id, run_id, envelope",
        list(run_ids),
    )
    return [HeldCall(row["approval_id"], row["run_id"], bytes(row["envelope"])) for row in rows]


async def hold(conn: asyncpg.Connection, held: Sequence[HeldCall]) -> None:
    if not held:
        return
    await conn.execute(
        """
        INSERT INTO held_calls (approval_id, run_id, envelope)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
        ON CONFLICT (approval_id) DO NOTHING
        """,
        [h.approval_id for h in held],
        [h.run_id for h in held],
        [h.envelope for h in held],
    )

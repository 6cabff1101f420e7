"""Transactions that decide stored requests outside the consumer: a vote over HTTP and
the expiry of pending requests. Each locks the request rows it decides, so a vote, an
expiry and a consumer batch on any process decide one request one at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from awooop.approval.adapters import approval_store
from awooop.approval.domain.requests import State, TokenMinter, VoteAnswer, cast_vote, expire
from awooop.approval.recording import recorded
from awooop.contracts.events.payloads.approval import Vote
from awooop.infra.postgres import event_store

EXPIRED_PER_TRANSACTION = 100


@dataclass(frozen=True, slots=True)
class ApiVote:
    """What a vote over HTTP did to its request (`answer` None: no such request for the
    voter's projects)."""

    answer: VoteAnswer | None
    state: State | None = None


async def vote_over_api(
    conn: asyncpg.Connection,
    approval_id: uuid.UUID,
    *,
    vote: Vote,
    subject: str,
    projects: frozenset[str] | None,
    mint: TokenMinter,
) -> ApiVote:
    """Cast `subject`'s vote on a request of one of `projects` (None: any project)."""
    async with conn.transaction():
        found = await approval_store.lock_requests(conn, [approval_id])
        stored = found.get(approval_id)
        if stored is None or (projects is not None and stored.request.project_id not in projects):
            return ApiVote(None)
        at = await conn.fetchval("SELECT now()")
        answer = cast_vote(stored.request, vote=vote, via="api", subject=subject, at=at, mint=mint)
        approver = stored.request.approver_of("api", subject)
        actor = f"approver:{approver.approver_id}" if approver else f"user:{subject}"
        after, events = recorded(stored, answer.decision, at=at, causation_id=None, actor=actor)
        await approval_store.save_requests(conn, [after])
        await event_store.append(conn, events)
    return ApiVote(answer, after.request.state)


async def expire_due(pool: asyncpg.Pool) -> int:
    """Deny the pending requests past their expiry (by the database's clock), a bounded
    number per transaction; how many were denied."""
    async with pool.acquire() as conn, conn.transaction():
        now, due = await approval_store.lock_due(conn, EXPIRED_PER_TRANSACTION)
        decided = [recorded(s, expire(s.request, now), at=now, causation_id=None) for s in due]
        await approval_store.save_requests(conn, [stored for stored, _ in decided])
        await event_store.append(conn, [e for _, events in decided for e in events])
    return len(due)

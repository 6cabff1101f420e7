"""The executor's transactions: each changes `tool_calls` and appends the outcomes it
decided in one commit, on the executor's own connection (never across an MCP call).
A group's answers and the next claim are one statement of their transaction.

Each event takes the call's next `stream_seq` (`ClaimedCall.next_seq`): 1 for a call
never held, 2 and on for an approved one; the retried attempts of an approved call are
recorded with its outcome, in attempt order, in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from awooop.contracts.registries.errors import E_MCP_CALL_EXPIRED, E_MCP_CALL_UNKNOWN
from awooop.infra.postgres import event_store
from awooop.infra.postgres.event_store import NewEvent
from awooop.mcp_gateway.adapters import tool_calls
from awooop.mcp_gateway.adapters.executor_connection import ExecutorConnection
from awooop.mcp_gateway.adapters.tool_calls import ClaimedCall, Finished, outcome_event
from awooop.mcp_gateway.domain.calls import blocked, failed, retried, succeeded
from awooop.mcp_gateway.domain.gates import GateRefusal
from awooop.mcp_gateway.domain.results import CallError, CallResult
from awooop.mcp_gateway.domain.retries import RetriedAttempt


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """A call the executor ran, with what came of it."""

    claimed: ClaimedCall
    outcome: CallResult | CallError | GateRefusal
    """A result, a failure, or gate 1's refusal when the tool changed before the call."""
    latency_ms: float | None = None
    """The MCP call alone; None when no call was made."""
    retries: tuple[RetriedAttempt, ...] = ()
    """The earlier attempts of an approved call that failed transiently, in order."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claim took: the calls to run, and how many had expired (answered so)."""

    to_run: list[ClaimedCall]
    expired: int


Room = Callable[[], int]
"""How many calls may be claimed now: asked once the executor's connection is held, so
two claimers of one process never both fill the same free slots."""


NOTHING = Claimed([], 0)


async def claim(db: ExecutorConnection, room: Room) -> Claimed:
    """Claim up to `room()` due calls in a transaction of their own."""
    async with db.use() as conn, conn.transaction():
        limit = room()
        if limit <= 0:
            return NOTHING
        claimed = await tool_calls.claim_due(conn, db.executor_id, limit)
        return Claimed(claimed.to_run, await _expire(conn, claimed, limit))


async def _expire(conn: Any, claimed: tool_calls.Claimed, room: int) -> int:
    """In a claim's transaction, when the claim saw any: answer `E-MCP-CALL-EXPIRED` for
    up to `room` admitted calls past their deadline, each marked failed with its answer.
    A transaction with no room (answers recorded alone) expires nothing; the next claim
    takes the rest."""
    if not claimed.expired_waiting or room <= 0:
        return 0
    expired = await tool_calls.expire_due(conn, room)
    at = _now()
    answers = []
    for c in expired:
        reason = f"not started before its execute_before {c.call.execute_before.isoformat()}"
        answers.append(
            outcome_event(failed(c.call, E_MCP_CALL_EXPIRED.code, reason, at, seq=c.next_seq))
        )
    await event_store.append(conn, answers)
    return len(expired)


async def record(
    db: ExecutorConnection, finished: Sequence[FinishedCall], room: Room = lambda: 0
) -> tuple[int, Claimed]:
    """Answer finished calls in one transaction; how many were still this executor's.

    One statement closes the calls, appends the answers of those still held and claims
    up to `room()` due calls (the slots the finished calls freed): a busy executor
    commits once per group of calls, in three round trips. A transaction that fails
    before its commit claimed nothing."""
    rows: list[tuple[str, Finished, str | None]] = [
        (f.claimed.call.call_id, _status(f.outcome), _code(f.outcome)) for f in finished
    ]
    at = _now()
    events: list[NewEvent] = []
    for f in finished:
        events.extend(outcome_event(e) for e in _retried(f))
        events.append(outcome_event(_answer(f, at, f.claimed.next_seq + len(f.retries))))
    async with db.use() as conn, conn.transaction():
        limit = room()
        done = await tool_calls.finish_and_claim(conn, db.executor_id, rows, events, limit)
        expired = await _expire(conn, done.claimed, limit)
    return len(done.held), Claimed(done.claimed.to_run, expired)


def _retried(f: FinishedCall) -> list[Any]:
    call, seq = f.claimed.call, f.claimed.next_seq
    return [
        retried(
            call,
            attempt=r.attempt,
            code=r.code,
            reason=r.reason,
            retry_in=r.retry_in,
            latency_ms=r.latency_ms,
            at=r.at,
            seq=seq + n,
        )
        for n, r in enumerate(f.retries)
    ]


def _status(outcome: CallResult | CallError | GateRefusal) -> Finished:
    if isinstance(outcome, CallResult):
        return "succeeded"
    return "blocked" if isinstance(outcome, GateRefusal) else "failed"


def _code(outcome: CallResult | CallError | GateRefusal) -> str | None:
    return None if isinstance(outcome, CallResult) else outcome.code


def _answer(f: FinishedCall, at: dt.datetime, seq: int) -> Any:
    call, outcome, revision = f.claimed.call, f.outcome, f.claimed.revision
    if isinstance(outcome, CallResult):
        return succeeded(
            call,
            outcome.result,
            revision,
            at,
            result_redactions=outcome.redactions,
            latency_ms=f.latency_ms,
            seq=seq,
        )
    if isinstance(outcome, GateRefusal):
        return blocked(call, outcome, at, seq=seq)
    return failed(
        call,
        outcome.code,
        outcome.reason,
        at,
        transient=outcome.transient,
        revisions=(revision,),
        latency_ms=f.latency_ms,
        seq=seq,
    )


async def sweep_abandoned(db: ExecutorConnection) -> int:
    """Answer `E-MCP-CALL-UNKNOWN` for calls left `executing` by executors that are gone."""
    answered = 0
    async with db.use() as conn:
        for claimer in await tool_calls.other_claimers(conn, db.executor_id):
            async with conn.transaction():
                if not await db.gone(conn, claimer):
                    continue
                abandoned = await tool_calls.fail_abandoned(conn, claimer)
                at = _now()
                reason = (
                    f"executor {claimer} stopped during the call; whether it ran is unknown, "
                    "and it is never run again"
                )
                await event_store.append(
                    conn,
                    [
                        outcome_event(
                            failed(c.call, E_MCP_CALL_UNKNOWN.code, reason, at, seq=c.next_seq)
                        )
                        for c in abandoned
                    ],
                )
                answered += len(abandoned)
    return answered

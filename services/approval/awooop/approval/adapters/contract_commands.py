"""Running one contract command against the approval event store, in one transaction.

The transaction claims the request id first (a concurrent twin waits on that row and
then finds the answer), locks the contract's stream, folds its events, decides, keeps
what the active contracts hold (`contract_claims`, `channel_bots`), appends the event
(and its outbox row) and stores the answer under the request id. A refusal rolls all of
it back: only a command that appended has an answer to repeat.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.approval.adapters import contract_claims
from awooop.approval.domain.commands import ContractCommand, decide, fingerprint
from awooop.approval.domain.contracts import Contract
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_CONTRACT_REQUEST_REUSED, CodedError
from awooop.contracts.registries.service_names import APPROVAL
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import (
    append,
    load_stream,
    lock_streams,
    with_conflict_retries,
)
from awooop.security.signing_keys import SigningKey

_CODEC = EnvelopeCodec()


class RequestReused(CodedError):
    """The request id answered another command or body before."""

    error = E_CONTRACT_REQUEST_REUSED


@dataclass(frozen=True)
class Outcome:
    """The answer to give; ``replayed`` when it is the stored answer of an earlier request."""

    status: int
    answer: dict[str, Any]
    replayed: bool = False


async def load_contract(conn: asyncpg.Connection, project_id: str, contract_id: str) -> Contract:
    """The contract folded from its stored events."""
    stored = await load_stream(conn, f"{project_id}:{contract_id}")
    return Contract.fold(project_id, contract_id, [_CODEC.decode(e.data).payload for e in stored])


async def run_command(
    pool: asyncpg.Pool,
    command: ContractCommand,
    signing_key: SigningKey,
    signatures: Mapping[str, int] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Outcome:
    """Decide and record ``command``; raises ``ContractRefused`` or ``RequestReused``.

    Retried whole on a version conflict (``ConflictBoundExceeded`` past the bound).
    """
    asked = fingerprint(command)

    async def write(conn: asyncpg.Connection) -> Outcome:
        claimed = await conn.fetchval(
            "INSERT INTO contract_requests (project_id, request_id, fingerprint, status, answer) "
            "VALUES ($1, $2, $3, 0, '{}') ON CONFLICT DO NOTHING RETURNING true",
            command.project_id,
            command.request_id,
            asked,
        )
        if not claimed:
            return await _earlier_answer(conn, command, asked)
        stream_id = command.stream_id
        versions = await lock_streams(conn, [stream_id])
        state = await load_contract(conn, command.project_id, command.contract_id)
        decision = decide(state, command, signing_key, signatures)
        await contract_claims.follow(conn, state, decision.payload)
        envelope = new_envelope(
            decision.payload,
            occurred_at=now(),
            project_id=command.project_id,
            stream_type="contract",
            stream_id=stream_id,
            stream_seq=versions[stream_id] + 1,
            trace_id=new_trace_id(),
            correlation_id=stream_id,
            actor=command.subject,
            producer=APPROVAL,
        )
        await append(conn, [to_new_event(envelope, Topics.CONTRACT_EVENTS, stream_id)])
        await conn.execute(
            "UPDATE contract_requests SET status = $3, answer = $4::jsonb "
            "WHERE project_id = $1 AND request_id = $2",
            command.project_id,
            command.request_id,
            decision.status,
            json.dumps(decision.answer),
        )
        return Outcome(decision.status, decision.answer)

    return await with_conflict_retries(pool, write)


async def _earlier_answer(
    conn: asyncpg.Connection, command: ContractCommand, asked: str
) -> Outcome:
    row = await conn.fetchrow(
        "SELECT fingerprint, status, answer FROM contract_requests "
        "WHERE project_id = $1 AND request_id = $2",
        command.project_id,
        command.request_id,
    )
    assert row is not None  # the claim conflicted with this committed row
    if row["fingerprint"] != asked:
        msg = (
            f"request_id {command.request_id!r} was used for another command or body; "
            "choose a new request_id for a new command"
        )
        raise RequestReused(msg)
    return Outcome(row["status"], json.loads(row["answer"]), replayed=True)

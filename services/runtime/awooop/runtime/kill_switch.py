"""A tenant's kill switch: tripped, it cancels every active run of the tenant; reset by
an operator. Writes in the caller's transaction, with their `budget.*` events.

Locks are taken in the order every other writer of the runtime keeps: run rows in id
order, the tenant's `budget_kills` row (a debit naming a tenant scope, and every move of
reserved amounts, lock it before any ledger row and keep it until their transaction
ends), ledger rows in `scope_key COLLATE "C"` order, then the budget stream's `streams`
row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from awooop.contracts.events.payloads.budget import TenantKilled, TenantReset
from awooop.contracts.records.envelope import EventPayload, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_BUDGET_KILLED
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres import event_store
from awooop.runtime.adapters import budget_ledger, runs
from awooop.runtime.cancellation import cancel_runs

BUDGET_STREAM_TYPE = "budget"


def budget_stream(project_id: str) -> str:
    """The stream of a tenant's budget events (`budget.*`), keyed by project on its topic."""
    return f"budget:{project_id}"


async def append_budget_event(
    conn: asyncpg.Connection,
    payload: EventPayload,
    *,
    project_id: str,
    actor: str,
    now: dt.datetime,
    service: str,
) -> None:
    """Append `payload` to the tenant's budget stream at its next version (the stream's
    row locked first), for `awooop.budget.events.v1`, keyed by project."""
    stream = budget_stream(project_id)
    versions = await event_store.lock_streams(conn, [stream])
    envelope = new_envelope(
        payload,
        occurred_at=now,
        project_id=project_id,
        stream_type=BUDGET_STREAM_TYPE,
        stream_id=stream,
        stream_seq=versions[stream] + 1,
        trace_id=new_trace_id(),
        correlation_id=project_id,
        actor=actor,
        producer=service,
    )
    await event_store.append(conn, [to_new_event(envelope, Topics.BUDGET_EVENTS, project_id)])


@dataclass(frozen=True)
class Kill:
    """What one `kill_tenant` call did."""

    tripped: bool
    """This call tripped the switch and said `budget.tenant_killed`; False when it was
    tripped already."""
    cancelled: int
    """Active runs of the tenant this call cancelled."""


async def kill_tenant(
    pool: asyncpg.Pool,
    project_id: str,
    *,
    reason: str,
    budget_revision: str,
    now: dt.datetime,
    service: str,
) -> Kill:
    """Trip the tenant's kill switch, then cancel every active run of the project
    (`E-BUDGET-KILLED`). A switch tripped already is left as it is (no second
    `budget.tenant_killed`), but the tenant's active runs are still cancelled.

    Two transactions, in this order. The first trips the switch and appends one
    `budget.tenant_killed`. Every debit statement (`reserve`, `charge`) that names a
    tenant scope (the only spend that trips the switch) locks the tenant's switch row
    until its transaction ends and reads its newest version, so the trip waits for
    every transaction that spent before it, and any debit after it takes nothing. The
    second transaction therefore sees every run that spent before the trip (those whose
    step is finishing are waited for under their row lock) and cancels them; a run that
    starts meanwhile is cancelled at its first debit.

    A switch found tripped still gets the second transaction: it writes nothing when
    no run is left to cancel, and it ends the runs a kill that stopped between its two
    transactions (a crash) left active. Call it holding no run or ledger row (after a
    step's commit)."""
    actor = f"service:{service}"
    async with pool.acquire() as conn, conn.transaction():
        tripped = await budget_ledger.kill(conn, project_id, reason) is not None
        if tripped:
            killed = TenantKilled(
                code=E_BUDGET_KILLED.code, reason=reason, budget_revision=budget_revision
            )
            await append_budget_event(
                conn, killed, project_id=project_id, actor=actor, now=now, service=service
            )
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"SELECT {runs.COLUMNS} FROM runs WHERE project_id = $1 "
            f"AND state NOT IN {runs.TERMINAL} ORDER BY run_id FOR UPDATE",
            project_id,
        )
        cancelled = await cancel_runs(
            conn,
            [runs.run_of(row) for row in rows],
            code=E_BUDGET_KILLED.code,
            reason=reason,
            actor=actor,
            now=now,
            service=service,
        )
    return Kill(tripped, len(cancelled))


async def reset_tenant(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    actor: str,
    reason: str,
    now: dt.datetime,
    service: str,
) -> bool:
    """Reset a tripped kill switch and append `budget.tenant_reset`; False, writing
    nothing, when the switch was not tripped. Cancelled runs stay cancelled."""
    if await budget_ledger.reset(conn, project_id) is None:
        return False
    reset = TenantReset(actor=actor, reason=reason)
    await append_budget_event(
        conn, reset, project_id=project_id, actor=actor, now=now, service=service
    )
    return True

"""The run and budget commands: cancel a run, reset a tenant's kill switch.

Each command is one transaction (retried on a version conflict); after a commit that
appended, the relay is woken so the events are published at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from awooop.contracts.records.envelope import PROJECT_ID_PATTERN
from awooop.contracts.registries.errors import E_API_UNAVAILABLE, E_RUN_ENDED, E_RUN_UNKNOWN
from awooop.infra.postgres.errors import ConflictBoundExceeded
from awooop.infra.postgres.event_store import with_conflict_retries
from awooop.runtime.api.auth import Caller, cancel_scope, require_operator
from awooop.runtime.api.errors import ApiRefusal
from awooop.runtime.cancellation import cancel_run
from awooop.runtime.kill_switch import reset_tenant

router = APIRouter(prefix="/v1", tags=["commands"])

ProjectId = Annotated[str, Path(pattern=PROJECT_ID_PATTERN)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]

OUTAGES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

T = TypeVar("T")


class ReasonRequest(BaseModel):
    """A command's body: why (kept on the command's event)."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason


async def _write(request: Request, write: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    try:
        return await with_conflict_retries(request.app.state.pool(), write)
    except ConflictBoundExceeded as busy:
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, str(busy)) from None
    except OUTAGES as outage:
        reason = f"the runtime database is unavailable ({type(outage).__name__}); retry"
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, reason) from None


async def read(request: Request, fetch: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`fetch` in a read-only transaction; an outage is a 503."""
    try:
        async with request.app.state.pool().acquire() as conn, conn.transaction(readonly=True):
            return await fetch(conn)
    except OUTAGES as outage:
        reason = f"the runtime database is unavailable ({type(outage).__name__}); retry"
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, reason) from None


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request, run_id: uuid.UUID, sent: ReasonRequest, who: Caller
) -> dict[str, Any]:
    """Cancel an active run (`run.cancelled`, code `E-RUN-CANCELLED`). A cancelled run
    answers 200 with `already: true`; a run that ended otherwise is 409; a run the token
    may not see is 404, as a missing one."""
    projects = cancel_scope(who)
    state = request.app.state

    async def write(conn: asyncpg.Connection) -> Any:
        return await cancel_run(
            conn,
            run_id,
            actor=who.subject,
            reason=sent.reason,
            now=state.clock(),
            service=state.service,
            projects=projects,
        )

    outcome = await _write(request, write)
    if outcome.run is None:
        raise ApiRefusal(404, E_RUN_UNKNOWN.code, f"no run {run_id}")
    run = outcome.run
    if outcome.status == "ended":
        reason = f"run {run_id} already ended ({run.state}): it cannot be cancelled"
        raise ApiRefusal(409, E_RUN_ENDED.code, reason, state=run.state)
    if outcome.status == "cancelled":
        state.wake()
    return {
        "run_id": str(run.run_id),
        "project_id": run.project_id,
        "state": run.state,
        "already": outcome.status == "already_cancelled",
    }


@router.post("/budgets/{project_id}/reset")
async def reset(
    request: Request, project_id: ProjectId, sent: ReasonRequest, who: Caller
) -> dict[str, Any]:
    """Reset the tenant's kill switch (`budget.tenant_reset`); `was_killed` is false, and
    nothing is written, when it was not tripped."""
    require_operator(who, "resetting a kill switch")
    state = request.app.state

    async def write(conn: asyncpg.Connection) -> bool:
        return await reset_tenant(
            conn,
            project_id,
            actor=who.subject,
            reason=sent.reason,
            now=state.clock(),
            service=state.service,
        )

    was_killed = await _write(request, write)
    if was_killed:
        state.wake()
    return {"project_id": project_id, "was_killed": was_killed}

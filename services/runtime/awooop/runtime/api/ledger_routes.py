"""The budget ledger as it stands, from its only authority: each tenant and agent scope
with its limits, what is reserved by steps under way and what is settled, and the
tenant's kill switch. (The projector's `GET /v1/budgets` shows what the events say:
settled usage per step; reservations of steps under way are not events.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from awooop.contracts.registries.errors import E_API_FORBIDDEN
from awooop.runtime.adapters import budget_ledger
from awooop.runtime.api.auth import OPERATOR, Caller
from awooop.runtime.api.errors import ApiRefusal
from awooop.runtime.api.routes import ProjectId, read

router = APIRouter(prefix="/v1", tags=["budgets"])


@router.get("/budgets/{project_id}/ledger")
async def ledger(request: Request, project_id: ProjectId, who: Caller) -> dict[str, Any]:
    """A token naming the project, or an operator's, reads it; any other is 403."""
    if OPERATOR not in who.roles and project_id not in who.projects:
        reason = f"the token does not name project {project_id!r}"
        raise ApiRefusal(403, E_API_FORBIDDEN.code, reason)

    async def fetch(conn: Any) -> tuple[list[budget_ledger.LedgerRow], bool]:
        rows = await budget_ledger.live_scopes(conn, project_id)
        return rows, bool(await budget_ledger.killed(conn, [project_id]))

    rows, killed = await read(request, fetch)
    return {
        "project_id": project_id,
        "killed": killed,
        "scopes": [
            {
                "scope_key": row.scope_key,
                "scope": row.scope,
                "subject": row.subject,
                "period": row.period,
                "period_key": row.period_key,
                "limit_tokens": row.limit_tokens,
                "limit_cost": _text(row.limit_cost),
                "reserved_tokens": row.reserved_tokens,
                "reserved_cost": _text(row.reserved_cost),
                "settled_tokens": row.settled_tokens,
                "settled_cost": _text(row.settled_cost),
                "tripped": row.tripped_at is not None,
            }
            for row in rows
        ],
    }


def _text(amount: Any) -> str | None:
    """Money as an exact decimal string, never a float."""
    return None if amount is None else format(amount.normalize(), "f")

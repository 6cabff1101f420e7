"""Budget queries of the API: one project's kill switch, usage, tripped scopes and the
limits of its active budget contracts.

The caller has set the tenant on the transaction; every statement names
`project_id` on top of the row-level-security policy (`budget_usage` is a
`security_invoker` view, so the policies of the tables it reads apply).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from awooop.contracts.families.budget import Budget

_STATE = text(
    "SELECT killed, changed_at, event_type, code, reason, actor, budget_revision "
    "FROM budget_state WHERE project_id = :p"
)
_IN_PERIODS = (
    "((period = 'daily' AND period_key = :day) OR (period = 'monthly' AND period_key = :month))"
)
_USAGE = text(
    "SELECT agent_id, period, period_key, steps, tokens_in, tokens_out, tokens, cost "
    f"FROM budget_usage WHERE project_id = :p AND {_IN_PERIODS} "
    "ORDER BY period, agent_id NULLS LAST"
)
_TRIPS = text(
    "SELECT scope_key, scope, period, period_key, budget_revision, occurred_at "
    f"FROM budget_trips WHERE project_id = :p AND {_IN_PERIODS} ORDER BY occurred_at, event_id"
)
_ACTIVE = text(
    "SELECT c.contract_id, r.revision, r.signature_check, r.body FROM contracts c "
    "JOIN contract_revisions r ON r.project_id = c.project_id "
    "AND r.contract_id = c.contract_id AND r.revision = c.active_revision "
    "WHERE c.project_id = :p AND c.family = 'budget' ORDER BY c.contract_id"
)

NO_KILL_SWITCH: dict[str, Any] = {
    "killed": False,
    "changed_at": None,
    "event_type": None,
    "code": None,
    "reason": None,
    "actor": None,
    "budget_revision": None,
}


async def project_budget(
    session: AsyncSession, project_id: str, day: str, month: str
) -> dict[str, Any]:
    """Everything `GET /v1/budgets` shows of one project, for one UTC day and its month."""
    periods = {"p": project_id, "day": day, "month": month}
    state = (await session.execute(_STATE, {"p": project_id})).mappings().first()
    usage = [dict(row) for row in (await session.execute(_USAGE, periods)).mappings()]
    for row in usage:
        row["cost"] = format(row["cost"], "f")
    trips = [dict(row) for row in (await session.execute(_TRIPS, periods)).mappings()]
    active = (await session.execute(_ACTIVE, {"p": project_id})).mappings()
    return {
        "project_id": project_id,
        "day": day,
        "month": month,
        "kill_switch": dict(state) if state is not None else NO_KILL_SWITCH,
        "usage": usage,
        "tripped": trips,
        "budgets": [b for row in active if (b := _active_budget(dict(row))) is not None],
    }


def _active_budget(row: dict[str, Any]) -> dict[str, Any] | None:
    """The limits of an active revision; None when its body is not a budget document
    (the runtime would not run under it either)."""
    body = json.loads(row["body"]) if isinstance(row["body"], str) else row["body"]
    try:
        budget = Budget.model_validate(body)
    except ValidationError:
        return None
    limits = [
        {
            "scope": limit.scope,
            "agent_id": getattr(limit, "agent_id", None),
            "period": limit.period,
            "max_tokens": limit.max_tokens,
            "max_cost": limit.max_cost,
        }
        for limit in budget.limits
    ]
    return {
        "contract_id": row["contract_id"],
        "revision": row["revision"],
        "signature_check": row["signature_check"],
        "currency": budget.currency,
        "kill_switch_at": budget.kill_switch_at,
        "limits": limits,
    }

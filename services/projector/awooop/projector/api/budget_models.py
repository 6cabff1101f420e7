"""The response shapes of `GET /v1/budgets` (published in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class KillSwitch(_Frozen):
    """The tenant's kill switch, as its latest kill or reset event left it."""

    killed: bool
    changed_at: datetime | None = Field(description="null when it never tripped")
    event_type: Literal["budget.tenant_killed", "budget.tenant_reset"] | None
    code: str | None = Field(description="the kill's error code; null after a reset")
    reason: str | None
    actor: str | None = Field(description="service:runtime for a kill, the operator for a reset")
    budget_revision: str | None = Field(description="the budget revision whose share tripped it")


class AgentUsage(_Frozen):
    """What one agent's LLM steps settled in one period (the `budget_usage` view)."""

    agent_id: str | None = Field(description="null for steps of runs whose start is unknown")
    period: Literal["daily", "monthly"]
    period_key: str = Field(description="the UTC day (YYYY-MM-DD) or month (YYYY-MM)")
    steps: int
    tokens_in: int
    tokens_out: int
    tokens: int
    cost: str = Field(description="exact decimal, in the budget's currency")


class ScopeTrip(_Frozen):
    """A budget scope that could no longer fund a step in its period."""

    scope_key: str
    scope: Literal["tenant", "agent", "run"]
    period: Literal["run", "daily", "monthly"]
    period_key: str
    budget_revision: str
    occurred_at: datetime


class BudgetLimit(_Frozen):
    scope: Literal["tenant", "agent", "run"]
    agent_id: str | None = Field(description="the agent of an agent limit, else null")
    period: Literal["run", "daily", "monthly"]
    max_tokens: int | None
    max_cost: str | None


class ActiveBudget(_Frozen):
    """The limits of an active budget contract revision of the project."""

    contract_id: str
    revision: int
    signature_check: str | None = Field(description="`valid`, or why its signature did not")
    currency: str
    kill_switch_at: str = Field(description="share of the tenant budget that trips the switch")
    limits: list[BudgetLimit]


class ProjectBudget(_Frozen):
    project_id: str
    day: str = Field(description="the UTC day whose usage is shown (YYYY-MM-DD)")
    month: str = Field(description="its month (YYYY-MM)")
    kill_switch: KillSwitch
    usage: list[AgentUsage] = Field(description="the day's, then the month's, per agent")
    tripped: list[ScopeTrip] = Field(description="scopes tripped in that day or month")
    budgets: list[ActiveBudget] = Field(description="active budget contracts (normally one)")


class BudgetReport(_Frozen):
    projects: list[ProjectBudget] = Field(description="sorted by project_id")

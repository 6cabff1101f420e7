"""`GET /v1/budgets`: each project's kill switch, usage, tripped scopes and limits.

Unlike the run endpoints it reads several tenants in one request: every project
the token names, or the one `project_id` chosen. An `operator` token may choose
any project. The projects are read in one transaction, each with the tenant set
to it alone: the policies let a request see one tenant at a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from awooop.contracts.records.envelope import PROJECT_ID_PATTERN
from awooop.infra.postgres.tenant import set_tenant_sa
from awooop.projector.api.auth import api_claims
from awooop.projector.api.budget_models import BudgetReport, ProjectBudget
from awooop.projector.api.budget_queries import project_budget
from awooop.projector.api.routes import REFUSALS
from awooop.security.api_tokens import ApiClaims

OPERATOR = "operator"
"""The token role that may read any project it names with `project_id`."""

router = APIRouter(prefix="/v1")


def budget_projects(claims: ApiClaims, chosen: str | None) -> list[str]:
    """The projects a request reads, sorted; `HTTPException` 403 when it may read none."""
    if chosen is None:
        if not claims.projects:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the token names no project")
        return sorted(set(claims.projects))
    if chosen not in claims.projects and OPERATOR not in claims.roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"the token does not grant project {chosen!r}"
        )
    return [chosen]


@router.get("/budgets", response_model=BudgetReport, responses=REFUSALS, tags=["budgets"])
async def list_budgets(
    request: Request,
    claims: Annotated[ApiClaims, Depends(api_claims)],
    project_id: Annotated[
        str | None,
        Query(
            pattern=PROJECT_ID_PATTERN,
            description="only this project (any project for an operator token); "
            "default: every project the token names",
        ),
    ] = None,
    day: Annotated[
        date | None,
        Query(description="the UTC day whose usage to show, with its month; default today"),
    ] = None,
) -> BudgetReport:
    """Per project: its kill switch, what its agents' LLM steps settled that day and that
    month, the scopes tripped in them, and the limits of its active budget contracts."""
    projects = budget_projects(claims, project_id)
    shown = day or datetime.now(UTC).date()
    day_key, month_key = shown.isoformat(), shown.strftime("%Y-%m")
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    found = []
    async with sessions() as session, session.begin():
        for project in projects:
            await set_tenant_sa(session, project)
            found.append(await project_budget(session, project, day_key, month_key))
    return BudgetReport(projects=[ProjectBudget.model_validate(p) for p in found])

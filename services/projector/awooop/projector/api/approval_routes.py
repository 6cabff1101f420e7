"""`GET /v1/approvals` and `GET /v1/approvals/{approval_id}`: the tenant's approval
requests, their votes and how each ended (never a grant's token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from awooop.projector.api import approval_queries
from awooop.projector.api.approval_models import Approval, ApprovalPage
from awooop.projector.api.approval_queries import ApprovalCursor, ApprovalFilters
from awooop.projector.api.auth import Tenant, TenantSession
from awooop.projector.api.models import Problem
from awooop.projector.api.queries import InvalidCursor
from awooop.projector.api.routes import REFUSALS
from awooop.projector.domain.approvals import ApprovalState

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

router = APIRouter(prefix="/v1")


@router.get("/approvals", response_model=ApprovalPage, responses=REFUSALS, tags=["approvals"])
async def list_approvals(
    project_id: Tenant,
    session: TenantSession,
    state: Annotated[ApprovalState | None, Query(description="only this state")] = None,
    run_id: Annotated[uuid.UUID | None, Query(description="only this run's requests")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"requests per page, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="the `next` value of the previous page")
    ] = None,
) -> ApprovalPage:
    """The tenant's approval requests, newest first, one page at a time (`state=pending`:
    the ones waiting for approvers); arguments are the gateway's redacted display form."""
    try:
        after = ApprovalCursor.decode(cursor) if cursor is not None else None
    except InvalidCursor as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
    filters = ApprovalFilters(state=state, run_id=run_id)
    rows, following = await approval_queries.list_approvals(
        session, project_id, filters, limit, after
    )
    return ApprovalPage(
        items=[Approval.model_validate(row) for row in rows],
        next=following.encode() if following is not None else None,
    )


@router.get(
    "/approvals/{approval_id}",
    response_model=Approval,
    responses={**REFUSALS, status.HTTP_404_NOT_FOUND: {"model": Problem}},
    tags=["approvals"],
)
async def get_approval(
    approval_id: uuid.UUID, project_id: Tenant, session: TenantSession
) -> Approval:
    """One approval request of the tenant with every vote; 404 for one of no or another
    tenant."""
    row = await approval_queries.get_approval(session, project_id, approval_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"approval {approval_id} not found")
    return Approval.model_validate(row)

"""`/v1` endpoints: the run listing, one run with its timeline, and liveness."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from awooop.projector.api import queries
from awooop.projector.api.auth import Tenant, TenantSession
from awooop.projector.api.models import Health, Problem, RunDetail, RunPage, RunSummary
from awooop.projector.api.queries import Cursor, InvalidCursor

REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {"model": Problem, "description": "project_id or cursor wrong"},
    status.HTTP_401_UNAUTHORIZED: {"model": Problem, "description": "no or invalid token"},
    status.HTTP_403_FORBIDDEN: {"model": Problem, "description": "project not granted"},
}

router = APIRouter(prefix="/v1")


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/runs", response_model=RunPage, responses=REFUSALS, tags=["runs"])
async def list_runs(
    project_id: Tenant,
    session: TenantSession,
    limit: Annotated[int, Query(ge=1, le=200, description="runs per page")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="the `next` value of the previous page")
    ] = None,
) -> RunPage:
    """The tenant's runs, newest first, one page at a time."""
    try:
        after = Cursor.decode(cursor) if cursor is not None else None
    except InvalidCursor as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
    rows, following = await queries.list_runs(session, project_id, limit, after)
    return RunPage(
        runs=[RunSummary.model_validate(row) for row in rows],
        next=following.encode() if following is not None else None,
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    responses={**REFUSALS, status.HTTP_404_NOT_FOUND: {"model": Problem}},
    tags=["runs"],
)
async def get_run(run_id: uuid.UUID, project_id: Tenant, session: TenantSession) -> RunDetail:
    """One run of the tenant and its timeline; 404 for a run of no or another tenant."""
    row = await queries.get_run(session, project_id, run_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"run {run_id} not found")
    timeline = await queries.get_timeline(session, project_id, run_id)
    return RunDetail.model_validate({"run": row, "timeline": timeline})

"""`/v1` endpoints: runs and their timelines, contracts and their revisions, liveness."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from awooop.contracts.events.payloads.contract import CONTRACT_ID_PATTERN, ContractFamilyName
from awooop.projector.api import (
    approval_queries,
    channel_queries,
    contract_queries,
    mcp_call_queries,
    queries,
    run_detail_queries,
)
from awooop.projector.api.auth import Tenant, TenantSession
from awooop.projector.api.contract_queries import ContractCursor
from awooop.projector.api.models import (
    ContractDetail,
    ContractPage,
    ContractSummary,
    Health,
    Problem,
    RunDetail,
    RunPage,
    RunSummary,
)
from awooop.projector.api.queries import Cursor, InvalidCursor
from awooop.projector.domain.contract_rows import RevisionLifecycle

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
    """One run of the tenant with its timeline, its LLM steps, its tool calls and their
    approval requests, its inbound channel events and the messages it asked to send with
    their delivery; 404 for a run of no or another tenant."""
    row = await queries.get_run(session, project_id, run_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"run {run_id} not found")
    detail = {
        "run": row,
        "timeline": await queries.get_timeline(session, project_id, run_id),
        "steps": await run_detail_queries.get_steps(session, project_id, run_id),
        "mcp_calls": await mcp_call_queries.get_mcp_calls(session, project_id, run_id),
        "approvals": await approval_queries.get_approvals(session, project_id, run_id),
        "inbound": await channel_queries.get_inbound(session, project_id, run_id),
        "outbound": await channel_queries.get_outbound(session, project_id, run_id),
    }
    return RunDetail.model_validate(detail)


@router.get("/contracts", response_model=ContractPage, responses=REFUSALS, tags=["contracts"])
async def list_contracts(
    project_id: Tenant,
    session: TenantSession,
    family: Annotated[ContractFamilyName | None, Query(description="only this family")] = None,
    lifecycle: Annotated[
        RevisionLifecycle | None,
        Query(description="only contracts whose active (else latest) revision is in it"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="contracts per page")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="the `next` value of the previous page")
    ] = None,
) -> ContractPage:
    """The tenant's contracts in contract id order, one page at a time."""
    try:
        after = ContractCursor.decode(cursor) if cursor is not None else None
    except InvalidCursor as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error)) from None
    rows, following = await contract_queries.list_contracts(
        session, project_id, family=family, lifecycle=lifecycle, limit=limit, after=after
    )
    return ContractPage(
        contracts=[ContractSummary.model_validate(row) for row in rows],
        next=following.encode() if following is not None else None,
    )


@router.get(
    "/contracts/{contract_id}",
    response_model=ContractDetail,
    responses={**REFUSALS, status.HTTP_404_NOT_FOUND: {"model": Problem}},
    tags=["contracts"],
)
async def get_contract(
    contract_id: Annotated[str, Path(pattern=CONTRACT_ID_PATTERN)],
    project_id: Tenant,
    session: TenantSession,
) -> ContractDetail:
    """One contract of the tenant with every revision; 404 for one of no or another tenant."""
    row = await contract_queries.get_contract(session, project_id, contract_id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"contract {contract_id!r} not found in project {project_id!r}",
        )
    revisions = await contract_queries.get_revisions(session, project_id, contract_id)
    return ContractDetail.model_validate({"contract": row, "revisions": revisions})

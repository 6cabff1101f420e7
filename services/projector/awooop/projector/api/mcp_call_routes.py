"""`GET /v1/mcp-calls`: the tenant's recent tool calls and what the gateway decided."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from awooop.contracts.registries.errors import ERROR_CODE_PATTERN
from awooop.projector.api import mcp_call_queries
from awooop.projector.api.auth import Tenant, TenantSession
from awooop.projector.api.mcp_call_models import McpCall, McpCallPage
from awooop.projector.api.mcp_call_queries import McpCallFilters
from awooop.projector.api.routes import REFUSALS
from awooop.projector.domain.mcp_calls import McpCallStatus

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

router = APIRouter(prefix="/v1")


@router.get("/mcp-calls", response_model=McpCallPage, responses=REFUSALS, tags=["mcp"])
async def list_mcp_calls(
    project_id: Tenant,
    session: TenantSession,
    run_id: Annotated[uuid.UUID | None, Query(description="only this run's calls")] = None,
    tool: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="only calls of this tool",
        ),
    ] = None,
    status: Annotated[McpCallStatus | None, Query(description="only this status")] = None,
    gate: Annotated[
        int | None, Query(ge=1, le=5, description="only calls refused at this gate")
    ] = None,
    code: Annotated[
        str | None, Query(pattern=ERROR_CODE_PATTERN, description="only this error code")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"calls to return, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
) -> McpCallPage:
    """The tenant's newest tool calls, newest first, each with its status and the fields
    that go with it; arguments are the gateway's redacted display form only."""
    filters = McpCallFilters(run_id=run_id, tool=tool, status=status, gate=gate, code=code)
    rows = await mcp_call_queries.list_mcp_calls(session, project_id, filters, limit)
    return McpCallPage(items=[McpCall.model_validate(row) for row in rows])

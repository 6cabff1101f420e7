"""The contract commands: draft, publish, sign, activate and retire a revision.

Each body carries a client-chosen ``request_id``; repeating it repeats the first answer
and appends nothing, using it for another command or body is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from awooop.approval.adapters.contract_commands import run_command
from awooop.approval.api.auth import Admin
from awooop.approval.api.errors import ApiRefusal
from awooop.approval.domain.commands import CommandName, ContractCommand
from awooop.contracts.events.payloads.contract import CONTRACT_ID_PATTERN
from awooop.contracts.records.envelope import PROJECT_ID_PATTERN
from awooop.contracts.registries.errors import E_API_UNAVAILABLE
from awooop.infra.postgres.errors import ConflictBoundExceeded

router = APIRouter(prefix="/v1/contracts/{project_id}/{contract_id}", tags=["contracts"])

ProjectId = Annotated[str, Path(pattern=PROJECT_ID_PATTERN)]
ContractId = Annotated[str, Path(pattern=CONTRACT_ID_PATTERN)]
Revision = Annotated[int, Path(ge=1, le=2**31 - 1)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]

OUTAGES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class CommandRequest(BaseModel):
    """A command on a revision: only its idempotency key."""

    model_config = ConfigDict(extra="forbid")
    request_id: RequestId


class DraftRequest(CommandRequest):
    """A new revision: its family and body (checked against the family when published)."""

    family: str
    body: dict[str, Any]


async def _run(request: Request, command: ContractCommand) -> JSONResponse:
    state = request.app.state
    try:
        outcome = await run_command(state.pool(), command, state.signing_key, state.signatures)
    except ConflictBoundExceeded as busy:
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, str(busy)) from None
    except OUTAGES as outage:
        reason = f"the approval database is unavailable ({type(outage).__name__}); retry"
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, reason) from None
    if not outcome.replayed:
        state.wake()
    return JSONResponse(outcome.answer, status_code=outcome.status)


@router.post("/drafts", status_code=201)
async def create_draft(
    request: Request, project_id: ProjectId, contract_id: ContractId, sent: DraftRequest, who: Admin
) -> JSONResponse:
    """Draft the contract's next revision; the author is the token's subject."""
    command = ContractCommand(
        "draft",
        project_id,
        contract_id,
        who.subject,
        sent.request_id,
        family=sent.family,
        body=sent.body,
    )
    return await _run(request, command)


async def _on_revision(
    name: CommandName,
    request: Request,
    ids: tuple[str, str, int],
    sent: CommandRequest,
    who: Admin,
) -> JSONResponse:
    project_id, contract_id, revision = ids
    command = ContractCommand(
        name, project_id, contract_id, who.subject, sent.request_id, revision=revision
    )
    return await _run(request, command)


@router.post("/revisions/{revision}/publish")
async def publish_revision(
    request: Request,
    project_id: ProjectId,
    contract_id: ContractId,
    revision: Revision,
    sent: CommandRequest,
    who: Admin,
) -> JSONResponse:
    """Check a draft against its family and sign its canonical body with the service's key."""
    return await _on_revision("publish", request, (project_id, contract_id, revision), sent, who)


@router.post("/revisions/{revision}/signatures")
async def sign_revision(
    request: Request,
    project_id: ProjectId,
    contract_id: ContractId,
    revision: Revision,
    sent: CommandRequest,
    who: Admin,
) -> JSONResponse:
    """Sign a published revision as the token's subject (never its author, never twice)."""
    return await _on_revision("sign", request, (project_id, contract_id, revision), sent, who)


@router.post("/revisions/{revision}/activate")
async def activate_revision(
    request: Request,
    project_id: ProjectId,
    contract_id: ContractId,
    revision: Revision,
    sent: CommandRequest,
    who: Admin,
) -> JSONResponse:
    """Make a published revision with enough signers active, superseding the active one."""
    return await _on_revision("activate", request, (project_id, contract_id, revision), sent, who)


@router.post("/revisions/{revision}/retire")
async def retire_revision(
    request: Request,
    project_id: ProjectId,
    contract_id: ContractId,
    revision: Revision,
    sent: CommandRequest,
    who: Admin,
) -> JSONResponse:
    """Withdraw a revision for good (a draft, a published one or the active one)."""
    return await _on_revision("retire", request, (project_id, contract_id, revision), sent, who)

"""Votes over HTTP: `POST /v1/approvals/{approval_id}/decisions`.

The voter is the bearer token's subject: the policy lists each approver's API subject,
so one person counts once whether they vote here or by a chat button. A request of a
project the token does not name is answered as unknown (404), never as forbidden, so
no tenant learns of another's requests. A vote that counts is 200; a refused vote is
recorded (`approval.vote_refused`) and answered 403 (not an approver, the requester)
or 409 (already decided, already voted), with its code and reason.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict

from awooop.approval.adapters.approval_decisions import vote_over_api
from awooop.approval.api.auth import OPERATOR, bearer, unauthorized
from awooop.approval.api.errors import ApiRefusal
from awooop.contracts.registries.errors import (
    E_API_UNAVAILABLE,
    E_APPROVAL_NOT_APPROVER,
    E_APPROVAL_REQUESTER,
    E_APPROVAL_UNKNOWN,
)
from awooop.security.api_tokens import ApiClaims, InvalidApiToken, verify_api_token

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

OUTAGES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
FORBIDDING = (E_APPROVAL_NOT_APPROVER.code, E_APPROVAL_REQUESTER.code)


class DecisionRequest(BaseModel):
    """One person's vote on a request."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]


class DecisionAnswer(BaseModel):
    """What the vote did: counted or not (then why), and the request's state after it."""

    approval_id: uuid.UUID
    state: Literal["pending", "granted", "denied"]
    counted: bool
    code: str | None = None
    reason: str | None = None


async def voter(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiClaims:
    """The claims of a valid bearer token (any role: the policy decides who approves)."""
    if credentials is None:
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    try:
        return verify_api_token(credentials.credentials, request.app.state.jwt_secret)
    except InvalidApiToken as refused:
        raise unauthorized(f"invalid bearer token: {refused.reason}") from None


@router.post(
    "/{approval_id}/decisions",
    response_model=DecisionAnswer,
    responses={403: {"description": "a refused vote"}, 409: {"description": "a refused vote"}},
)
async def decide(
    request: Request,
    approval_id: uuid.UUID,
    sent: DecisionRequest,
    who: Annotated[ApiClaims, Depends(voter)],
) -> JSONResponse:
    """Approve or reject a pending request as the token's subject."""
    state = request.app.state
    if state.mint is None:
        reason = "this approval process has no approval token signing key: it cannot grant"
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, reason)
    projects = None if OPERATOR in who.roles else frozenset(who.projects)
    try:
        async with state.pool().acquire() as conn:
            done = await vote_over_api(
                conn,
                approval_id,
                vote=sent.decision,
                subject=who.subject,
                projects=projects,
                mint=state.mint,
            )
    except OUTAGES as outage:
        reason = f"the approval database is unavailable ({type(outage).__name__}); retry"
        raise ApiRefusal(503, E_API_UNAVAILABLE.code, reason) from None
    if done.answer is None or done.state is None:
        raise ApiRefusal(404, E_APPROVAL_UNKNOWN.code, f"no approval request {approval_id}")
    state.wake()
    answer = done.answer
    body: dict[str, Any] = DecisionAnswer(
        approval_id=approval_id,
        state=done.state,
        counted=answer.counted,
        code=answer.code,
        reason=answer.reason,
    ).model_dump(mode="json")
    if answer.counted:
        return JSONResponse(body)
    return JSONResponse(body, status_code=403 if answer.code in FORBIDDING else 409)

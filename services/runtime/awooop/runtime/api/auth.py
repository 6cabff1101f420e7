"""Who sends a runtime command: the bearer token, verified as the query API verifies it.

No or an invalid token is 401. Cancelling a run needs the role ``operator`` (every
project) or ``approver`` (the projects the token names); resetting a kill switch needs
``operator``. A token with neither role is 403 before any run is looked up, so the
answer never depends on what exists in a project it does not name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awooop.contracts.registries.errors import E_API_FORBIDDEN, E_API_UNAUTHORIZED
from awooop.runtime.api.errors import ApiRefusal
from awooop.security.api_tokens import ApiClaims, InvalidApiToken, verify_api_token

OPERATOR = "operator"
APPROVER = "approver"
MAX_SUBJECT = 256
"""A subject is named on events as their actor, which holds at most this many characters."""

bearer = HTTPBearer(auto_error=False, description="an HS256 token from `awooop token`")


def _unauthorized(reason: str) -> ApiRefusal:
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return ApiRefusal(401, E_API_UNAUTHORIZED.code, reason, headers=challenge)


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiClaims:
    """The claims of a valid bearer token; 401 without one."""
    if credentials is None:
        raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    try:
        claims = verify_api_token(credentials.credentials, request.app.state.jwt_secret)
    except InvalidApiToken as refused:
        raise _unauthorized(f"invalid bearer token: {refused.reason}") from None
    if len(claims.subject) > MAX_SUBJECT:
        raise _unauthorized(f"invalid bearer token: a subject has at most {MAX_SUBJECT} chars")
    return claims


Caller = Annotated[ApiClaims, Depends(caller)]


def cancel_scope(claims: ApiClaims) -> tuple[str, ...] | None:
    """The projects whose runs `claims` may cancel: None (every one) for an operator."""
    if OPERATOR in claims.roles:
        return None
    if APPROVER in claims.roles:
        return claims.projects
    reason = f"cancelling a run needs the role {OPERATOR!r}, or {APPROVER!r} on its project"
    raise ApiRefusal(403, E_API_FORBIDDEN.code, reason)


def require_operator(claims: ApiClaims, what: str) -> None:
    """403 unless `claims` hold the operator role."""
    if OPERATOR not in claims.roles:
        raise ApiRefusal(403, E_API_FORBIDDEN.code, f"{what} needs the role {OPERATOR!r}")

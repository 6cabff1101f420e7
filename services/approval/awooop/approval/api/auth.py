"""Who sends a contract command: the bearer token, verified as the query API verifies it.

No or an invalid token is 401; a token that does not name the project (an ``operator``
token names every project) or lacks the ``contract_admin`` role is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from awooop.approval.api.errors import ApiRefusal
from awooop.contracts.registries.errors import E_API_FORBIDDEN, E_API_UNAUTHORIZED
from awooop.security.api_tokens import ApiClaims, InvalidApiToken, verify_api_token

CONTRACT_ADMIN = "contract_admin"
OPERATOR = "operator"

bearer = HTTPBearer(auto_error=False, description="an HS256 token from `awooop token`")


def unauthorized(reason: str) -> ApiRefusal:
    challenge = 'Bearer error="invalid_token"'
    return ApiRefusal(401, E_API_UNAUTHORIZED.code, reason, **{"WWW-Authenticate": challenge})


async def contract_admin(
    request: Request,
    project_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiClaims:
    """The claims of a token allowed to send contract commands for ``project_id``."""
    if credentials is None:
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    try:
        claims = verify_api_token(credentials.credentials, request.app.state.jwt_secret)
    except InvalidApiToken as refused:
        raise unauthorized(f"invalid bearer token: {refused.reason}") from None
    if project_id not in claims.projects and OPERATOR not in claims.roles:
        reason = f"the token does not grant project {project_id!r}"
        raise ApiRefusal(403, E_API_FORBIDDEN.code, reason)
    if CONTRACT_ADMIN not in claims.roles:
        reason = f"contract commands need the role {CONTRACT_ADMIN!r}; the token has none"
        raise ApiRefusal(403, E_API_FORBIDDEN.code, reason)
    return claims


Admin = Annotated[ApiClaims, Depends(contract_admin)]

"""Bearer tokens, the tenant a request reads, and its tenant-scoped transaction.

Order of refusals: no or invalid token → 401; a token naming several projects
without `?project_id=` → 400; a `project_id` the token does not name → 403.
The tenant is set with a transaction-local `set_config`, so nothing leaks to the
next request on a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from awooop.infra.postgres.tenant import set_tenant_sa
from awooop.security.api_tokens import ApiClaims, InvalidApiToken, verify_api_token

bearer = HTTPBearer(auto_error=False, description="an HS256 token from `awooop token`")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=reason,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def api_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiClaims:
    if credentials is None:
        raise _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    secret: str = request.app.state.jwt_secret
    try:
        return verify_api_token(credentials.credentials, secret)
    except InvalidApiToken as refused:
        raise _unauthorized(f"invalid bearer token: {refused.reason}") from None


async def request_tenant(
    claims: Annotated[ApiClaims, Depends(api_claims)],
    project_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="the tenant to read; required when the token names several projects",
        ),
    ] = None,
) -> str:
    if project_id is None:
        if len(claims.projects) == 1:
            return claims.projects[0]
        if not claims.projects:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the token names no project")
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail="project_id is required: the token names several projects",
        )
    if project_id not in claims.projects:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"the token does not grant project {project_id!r}"
        )
    return project_id


async def tenant_session(
    request: Request, project_id: Annotated[str, Depends(request_tenant)]
) -> AsyncIterator[AsyncSession]:
    """A session inside a read transaction that sees only `project_id`."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session, session.begin():
        await set_tenant_sa(session, project_id)
        yield session


Tenant = Annotated[str, Depends(request_tenant)]
TenantSession = Annotated[AsyncSession, Depends(tenant_session)]

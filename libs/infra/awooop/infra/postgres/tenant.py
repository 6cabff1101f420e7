"""The tenant session: which project a transaction may see, set inside that transaction.

`set_config(..., true)` is transaction-local, so nothing leaks to the next
user of a pooled connection. Policies compare against
`nullif(current_setting('app.project_id', true), '')`: a fresh connection
reads NULL, one that ran an earlier transaction-local setting reads `''`,
and both mean "no tenant": zero rows, writes refused.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")

TENANT_POLICY_SQL = "project_id = nullif(current_setting('app.project_id', true), '')"
"""The `USING`/`WITH CHECK` expression of a single-tenant policy."""

TENANTS_POLICY_SQL = (
    "project_id = ANY (string_to_array(nullif(current_setting('app.project_ids', true), ''), ','))"
)
"""The expression of a policy for writers that serve a list of tenants per batch (projector)."""


class InvalidProjectId(ValueError):
    """A project id that does not match `^[a-z0-9][a-z0-9_-]{1,63}$`."""


def _checked(project_id: str) -> str:
    if not PROJECT_ID.fullmatch(project_id):
        raise InvalidProjectId(f"project_id {project_id!r} does not match {PROJECT_ID.pattern}")
    return project_id


async def set_tenant(conn: asyncpg.Connection, project_id: str) -> None:
    """Scope the current transaction to one tenant (must be inside a transaction)."""
    checked = _checked(project_id)
    await conn.execute("SELECT set_config('app.project_id', $1, true)", checked)


async def set_tenants(conn: asyncpg.Connection, project_ids: Iterable[str]) -> None:
    """Scope the current transaction to a list of tenants (the projector's batch)."""
    joined = ",".join(sorted({_checked(p) for p in project_ids}))
    await conn.execute("SELECT set_config('app.project_ids', $1, true)", joined)


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, project_id: str
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside a transaction that sees only `project_id`."""
    async with pool.acquire() as conn, conn.transaction():
        await set_tenant(conn, project_id)
        yield conn


async def set_tenant_sa(session: AsyncSession, project_id: str) -> None:
    """`set_tenant` for a SQLAlchemy session (inside its transaction)."""
    await session.execute(
        text("SELECT set_config('app.project_id', :p, true)"), {"p": _checked(project_id)}
    )

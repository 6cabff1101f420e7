"""Connection pools: raw asyncpg for the hot path, SQLAlchemy for the API."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from awooop.infra.settings import asyncpg_dsn, sqlalchemy_url


async def _no_session_reset(_conn: asyncpg.Connection) -> None:
    """What a returned connection needs beyond asyncpg's own step (which rolls back a
    transaction left open): nothing.

    asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release, a round trip per transaction. Service code keeps no
    session state on pooled connections: settings are `SET LOCAL` or
    `set_config(…, true)`, locks are transaction locks, cursors live inside
    transactions, and nothing listens. The one session-level lock, the gateway
    executor's liveness lock, is released by its holder before the connection goes
    back (`ExecutorConnection`)."""


async def create_pool(
    url: str, schema: str, *, min_size: int = 1, max_size: int = 10, name: str = "awooop"
) -> asyncpg.Pool:
    """An asyncpg pool whose connections work in `schema`."""
    pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": name},
        reset=_no_session_reset,
    )
    assert pool is not None
    return pool


def create_engine(url: str, *, pool_size: int = 5, name: str = "awooop-api") -> AsyncEngine:
    """A SQLAlchemy async engine (asyncpg driver) for request-scoped API work."""
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": name}},
    )

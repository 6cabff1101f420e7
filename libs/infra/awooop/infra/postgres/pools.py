"""Connection pools: raw asyncpg for the hot path, SQLAlchemy for the API."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from awooop.infra.settings import asyncpg_dsn, sqlalchemy_url


async def create_pool(
    url: str, schema: str, *, min_size: int = 1, max_size: int = 10, name: str = "awooop"
) -> asyncpg.Pool:
    """An asyncpg pool whose connections work in `schema`."""
    pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": name},
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

"""The query API's app factory and its process entry point.

The API logs in as `awooop_api` (neither superuser, owner nor BYPASSRLS) and
reads the projector's schema; `main()` serves it with uvicorn on
`AWOOOP_API_HOST`:`AWOOOP_API_PORT` (default 127.0.0.1:8700).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from awooop.infra.logging import configure_logging
from awooop.infra.settings import Settings, SettingsError, sqlalchemy_url
from awooop.projector.api import (
    approval_routes,
    budget_routes,
    channel_routes,
    mcp_call_routes,
)
from awooop.projector.api.routes import router

READ_MODEL_SCHEMA = "projector"
DEFAULT_PORT = 8700


def create_app(settings: Settings, *, schema: str = READ_MODEL_SCHEMA) -> FastAPI:
    """The API over `schema`'s read models; `SettingsError` without a JWT secret."""
    if not settings.api_jwt_secret:
        raise SettingsError(
            "the query API needs AWOOOP_API_JWT_SECRET (or <home>/api-jwt.secret, "
            "written by `awooop dev up`)"
        )
    engine = create_async_engine(
        sqlalchemy_url(settings.api_database_url()),
        pool_size=5,
        pool_pre_ping=True,
        connect_args={"server_settings": {"search_path": schema, "application_name": "awooop-api"}},
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="AwoooP query API",
        version="1",
        summary="Tenant-scoped runs, timelines, channel events, tool calls, approvals, "
        "contracts and budgets from the projector's read models",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.state.jwt_secret = settings.api_jwt_secret
    app.include_router(router)
    app.include_router(budget_routes.router)
    app.include_router(channel_routes.router)
    app.include_router(mcp_call_routes.router)
    app.include_router(approval_routes.router)
    return app


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    host = os.environ.get("AWOOOP_API_HOST", "127.0.0.1")
    port = int(os.environ.get("AWOOOP_API_PORT", DEFAULT_PORT))
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

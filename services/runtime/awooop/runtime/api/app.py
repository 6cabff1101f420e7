"""The command API's app factory: run and budget commands over the runtime's pool."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import asyncpg
from fastapi import FastAPI

from awooop.contracts.registries.service_names import RUNTIME
from awooop.runtime.api.errors import install_handlers
from awooop.runtime.api.ledger_routes import router as ledger_router
from awooop.runtime.api.routes import router


def create_api(
    pool: Callable[[], asyncpg.Pool],
    *,
    jwt_secret: str,
    clock: Callable[[], dt.datetime],
    service: str = RUNTIME,
    wake: Callable[[], None] = lambda: None,
) -> FastAPI:
    """The API over the pool ``pool()`` returns (the runtime schema's); ``clock`` dates the
    events and ``wake`` is called after each command that appended, so the relay
    publishes at once. `ValueError` without a JWT secret."""
    if not jwt_secret:
        raise ValueError("the command API needs the API JWT secret")
    app = FastAPI(
        title="AwoooP runtime API",
        version="1",
        summary="Run and budget commands: cancel a run, reset a tenant's kill switch",
    )
    app.state.pool = pool
    app.state.jwt_secret = jwt_secret
    app.state.clock = clock
    app.state.service = service
    app.state.wake = wake
    install_handlers(app)
    app.include_router(router)
    app.include_router(ledger_router)
    return app

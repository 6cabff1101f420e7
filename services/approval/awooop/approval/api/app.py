"""The approval API's app factory: contract commands and approval votes over the approval
service's event store."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import asyncpg
from fastapi import FastAPI

from awooop.approval.api.decision_routes import router as decisions
from awooop.approval.api.errors import install_handlers
from awooop.approval.api.routes import router
from awooop.approval.domain.requests import TokenMinter
from awooop.security.signing_keys import SigningKey


def create_api(
    pool: Callable[[], asyncpg.Pool],
    *,
    jwt_secret: str,
    signing_key: SigningKey,
    wake: Callable[[], None] = lambda: None,
    signatures: Mapping[str, int] | None = None,
    mint: TokenMinter | None = None,
) -> FastAPI:
    """The API over the pool ``pool()`` returns (the approval schema's); ``wake`` is called
    after each command that appended, so the relay publishes at once; ``signatures``
    overrides the signers a family needs; ``mint`` signs the tokens of grants (without
    it, votes are answered 503)."""
    if not jwt_secret:
        raise ValueError("the command API needs the API JWT secret")
    app = FastAPI(
        title="AwoooP approval API",
        version="1",
        summary="Contract commands (draft, publish, sign, activate, retire) and approval votes",
    )
    app.state.pool = pool
    app.state.jwt_secret = jwt_secret
    app.state.signing_key = signing_key
    app.state.wake = wake
    app.state.signatures = dict(signatures or {})
    app.state.mint = mint
    install_handlers(app)
    app.include_router(router)
    app.include_router(decisions)
    return app

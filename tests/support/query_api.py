"""The query API in tests: an app answering over ASGI, tokens for it, its OpenAPI document
with no database behind it, and the CLI's query client answered by a stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from awooop.cli import queries
from awooop.infra.settings import KafkaSettings, Settings
from awooop.projector.api.app import create_app
from awooop.security.api_tokens import mint_api_token

OFFLINE = Settings(
    kafka_config=KafkaSettings(bootstrap="127.0.0.1:1"),
    postgres_url="postgresql://127.0.0.1:1/none",
    redis_url="redis://127.0.0.1:1/0",
    home=Path("/nonexistent"),
    api_jwt_secret="unit-test-signing-secret-of-enough-bytes",
)
"""Settings that reach nothing: enough for the app to publish its OpenAPI document."""


@asynccontextmanager
async def api_client(
    settings: Settings, secret: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The query API of `settings` (its token secret replaced by `secret`) over ASGI."""
    if secret is not None:
        settings = dataclasses.replace(settings, api_jwt_secret=secret)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


async def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the query API publishes, with no database behind it."""
    async with api_client(OFFLINE) as http:
        document: dict[str, Any] = (await http.get("/openapi.json")).json()
    return document


def viewer(secret: str, *projects: str) -> dict[str, str]:
    """The headers of a viewer of `projects`, signed with `secret`."""
    token = mint_api_token(secret, subject="operator", projects=projects, roles=["viewer"])
    return {"Authorization": f"Bearer {token}"}


def stand_in_queries(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[httpx.Request], httpx.Response]
) -> list[httpx.Request]:
    """Make the CLI's `QueryClient` ask `answer` instead of a query API; the requests it
    sent, as they are sent."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", "cli-unit-test-secret-of-enough-bytes")
    monkeypatch.setenv("AWOOOP_API_URL", "http://query-api")

    class Stand(queries.QueryClient):
        def __init__(self, project: str, api_url: str | None = None) -> None:
            super().__init__(project, api_url)
            self._client = httpx.Client(
                base_url="http://query-api", transport=httpx.MockTransport(respond)
            )

    monkeypatch.setattr(queries, "QueryClient", Stand)
    return seen

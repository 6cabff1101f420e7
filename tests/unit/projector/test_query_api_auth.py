"""The query API's refusals that come before any database access: tokens and tenants."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from awooop.infra.settings import KafkaSettings, Settings, SettingsError
from awooop.projector.api.app import create_app
from awooop.projector.api.queries import Cursor, InvalidCursor
from awooop.security.api_tokens import mint_api_token

pytestmark = pytest.mark.unit

SECRET = "unit-test-signing-secret-of-enough-bytes"
# Never reached: every request below is refused before the API touches the database.
SETTINGS = Settings(
    kafka_config=KafkaSettings(bootstrap="127.0.0.1:1"),
    postgres_url="postgresql://127.0.0.1:1/none",
    redis_url="redis://127.0.0.1:1/0",
    home=Path("/nonexistent"),
    api_jwt_secret=SECRET,
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


def _auth(projects: list[str], secret: str = SECRET, now: datetime | None = None) -> dict[str, str]:
    token = mint_api_token(secret, subject="alice", projects=projects, roles=["viewer"], now=now)
    return {"Authorization": f"Bearer {token}"}


async def test_healthz_needs_no_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/runs/0190a5d1-ac96-774b-bcce-b302099a8057"])
async def test_no_token_is_401_with_a_reason(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 401
    assert "bearer token is required" in answer.json()["detail"]
    assert answer.headers["www-authenticate"].startswith("Bearer")
    basic = await client.get(path, headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert basic.status_code == 401


async def test_bad_tokens_are_401_with_a_reason(client: httpx.AsyncClient) -> None:
    forged = await client.get("/v1/runs", headers=_auth(["acme"], secret="x" * 40))
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    old = datetime.now(UTC) - timedelta(days=1)
    expired = await client.get("/v1/runs", headers=_auth(["acme"], now=old))
    assert (expired.status_code, expired.json()["detail"]) == (
        401,
        "invalid bearer token: token expired",
    )
    garbage = await client.get("/v1/runs", headers={"Authorization": "Bearer abc"})
    assert garbage.status_code == 401


async def test_several_projects_need_a_project_id(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/runs", headers=_auth(["acme", "globex"]))
    assert answer.status_code == 400
    assert "project_id is required" in answer.json()["detail"]


async def test_a_project_the_token_does_not_name_is_403(client: httpx.AsyncClient) -> None:
    for path in ("/v1/runs", "/v1/runs/0190a5d1-ac96-774b-bcce-b302099a8057"):
        answer = await client.get(path, params={"project_id": "globex"}, headers=_auth(["acme"]))
        assert answer.status_code == 403
        assert "globex" in answer.json()["detail"]
    nothing = await client.get("/v1/runs", headers=_auth([]))
    assert nothing.status_code == 403


async def test_the_openapi_document_names_paths_models_and_the_bearer_scheme(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {"/v1/runs", "/v1/runs/{run_id}", "/v1/healthz"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"RunPage", "RunDetail", "Run", "RunSummary", "TimelineEvent", "Problem"} <= set(schemas)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    detail = document["paths"]["/v1/runs/{run_id}"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(detail["responses"])
    run_id = next(p for p in detail["parameters"] if p["name"] == "run_id")
    assert run_id["schema"]["format"] == "uuid"


def test_the_api_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(SettingsError, match="AWOOOP_API_JWT_SECRET"):
        create_app(dataclasses.replace(SETTINGS, api_jwt_secret=None))


def test_the_api_logs_in_as_its_own_role() -> None:
    app = create_app(SETTINGS)
    assert app.state.engine.url.username == "awooop_api"


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    cursor = Cursor(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for foreign in ("", "abc", "!!!", "MjAyNi0wMS0wMg"):
        with pytest.raises(InvalidCursor):
            Cursor.decode(foreign)

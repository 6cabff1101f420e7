"""`GET /v1/budgets` and the run detail's new parts before any database: which projects a
token reads, the refusals, and what the OpenAPI document publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException

from awooop.infra.settings import KafkaSettings, Settings
from awooop.projector.api.app import create_app
from awooop.projector.api.budget_routes import budget_projects
from awooop.security.api_tokens import ApiClaims, mint_api_token

pytestmark = pytest.mark.unit

SECRET = "unit-test-signing-secret-of-enough-bytes"
SETTINGS = Settings(
    kafka_config=KafkaSettings(bootstrap="127.0.0.1:1"),
    postgres_url="postgresql://127.0.0.1:1/none",
    redis_url="redis://127.0.0.1:1/0",
    home=Path("/nonexistent"),
    api_jwt_secret=SECRET,
)
LATER = datetime.now(UTC) + timedelta(hours=1)


def _claims(projects: tuple[str, ...], roles: tuple[str, ...] = ("viewer",)) -> ApiClaims:
    return ApiClaims("alice", projects, roles, LATER)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


def _auth(projects: list[str], roles: list[str] | None = None) -> dict[str, str]:
    token = mint_api_token(SECRET, subject="alice", projects=projects, roles=roles or ["viewer"])
    return {"Authorization": f"Bearer {token}"}


def test_a_token_reads_the_projects_it_names_or_the_one_chosen() -> None:
    assert budget_projects(_claims(("globex", "acme", "acme")), None) == ["acme", "globex"]
    assert budget_projects(_claims(("acme", "globex")), "globex") == ["globex"]
    with pytest.raises(HTTPException) as refused:
        budget_projects(_claims(("acme",)), "globex")
    assert (refused.value.status_code, "globex" in refused.value.detail) == (403, True)
    with pytest.raises(HTTPException) as nothing:
        budget_projects(_claims(()), None)
    assert nothing.value.status_code == 403


def test_an_operator_token_may_choose_any_project() -> None:
    operator = _claims((), ("operator",))
    assert budget_projects(operator, "globex") == ["globex"]
    with pytest.raises(HTTPException):  # it still names the projects it reads
        budget_projects(operator, None)


async def test_budgets_refuse_before_reading_anything(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/budgets")
    assert missing.status_code == 401
    assert (await client.get("/v1/budgets", headers=_auth([]))).status_code == 403
    foreign = await client.get(
        "/v1/budgets", params={"project_id": "globex"}, headers=_auth(["acme"])
    )
    assert (foreign.status_code, "globex" in foreign.json()["detail"]) == (403, True)
    for wrong in ({"project_id": "Not A Project"}, {"day": "2026-13-01"}):
        answer = await client.get("/v1/budgets", params=wrong, headers=_auth(["acme"]))
        assert answer.status_code == 422


async def test_the_openapi_document_publishes_budgets_steps_and_outbound(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    budgets = document["paths"]["/v1/budgets"]["get"]
    assert {"200", "401", "403", "422"} <= set(budgets["responses"])
    assert {p["name"] for p in budgets["parameters"]} == {"project_id", "day"}
    schemas = document["components"]["schemas"]
    assert {"BudgetReport", "ProjectBudget", "KillSwitch", "AgentUsage", "ActiveBudget"} <= set(
        schemas
    )
    detail = schemas["RunDetail"]["properties"]
    assert detail["steps"]["items"]["$ref"].endswith("/RunStep")
    assert detail["outbound"]["items"]["$ref"].endswith("/OutboundMessage")
    assert schemas["RunStep"]["properties"]["cost"]["type"] == "string"

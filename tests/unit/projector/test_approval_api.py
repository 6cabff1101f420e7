"""`GET /v1/approvals`, `GET /v1/approvals/{approval_id}` and the run detail's approvals
before any database: what the OpenAPI document publishes (every route the app serves
included, never a token field), the refusals that come before the database, and the SQL
merge the projector writes with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from awooop.projector.adapters.approval_writer import UPSERT_APPROVALS
from awooop.projector.api.app import create_app
from awooop.projector.domain.approvals import APPROVAL_COLUMNS, APPROVAL_STATES
from awooop.projector.domain.mcp_calls import MCP_CALL_COLUMNS
from support.query_api import OFFLINE, api_client, openapi_document, viewer

pytestmark = pytest.mark.unit

APPROVAL = "8d5b2f8e-3c1a-5e7f-9a2b-4c6d8e0f1a2b"


@pytest.fixture
async def document() -> dict[str, Any]:
    return await openapi_document()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(OFFLINE) as http:
        yield http


def _paths(routes: list[Any]) -> set[str]:
    """The paths of the API routes under `routes`, the routers they include followed."""
    found: set[str] = set()
    for route in routes:
        if (router := getattr(route, "original_router", None)) is not None:
            found |= _paths(list(router.routes))
        elif getattr(route, "include_in_schema", False):
            found.add(route.path)
    return found


def test_every_route_the_app_serves_is_in_the_document_and_approvals_among_them() -> None:
    app = create_app(OFFLINE)
    served = _paths(list(app.routes))
    document = app.openapi()
    assert served == set(document["paths"])
    assert {"/v1/approvals", "/v1/approvals/{approval_id}"} <= served


async def test_the_listing_publishes_its_filters_pages_and_refusals(
    document: dict[str, Any],
) -> None:
    listing = document["paths"]["/v1/approvals"]["get"]
    assert {"200", "400", "401", "403", "422"} <= set(listing["responses"])
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert set(parameters) == {"project_id", "state", "run_id", "limit", "cursor"}
    state = next(s for s in parameters["state"]["anyOf"] if "enum" in s)
    assert state["enum"] == list(APPROVAL_STATES)
    run_id = next(s for s in parameters["run_id"]["anyOf"] if "format" in s)
    assert run_id["format"] == "uuid"
    assert (parameters["limit"]["default"], parameters["limit"]["maximum"]) == (50, 200)
    page = document["components"]["schemas"]["ApprovalPage"]
    assert set(page["properties"]) == {"items", "next"}
    one = document["paths"]["/v1/approvals/{approval_id}"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(one["responses"])
    approval_id = next(p for p in one["parameters"] if p["name"] == "approval_id")
    assert approval_id["schema"]["format"] == "uuid"


async def test_a_request_shows_every_column_but_never_a_token(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    approval = schemas["Approval"]
    shown = set(APPROVAL_COLUMNS) - {"project_id"}
    assert set(approval["properties"]) == shown
    assert set(approval["required"]) == shown
    assert "token" not in approval["properties"]
    assert approval["properties"]["state"]["enum"] == list(APPROVAL_STATES)
    vote = schemas["ApprovalVote"]
    assert set(vote["properties"]) == {
        "event_id",
        "at",
        "vote",
        "via",
        "approver_id",
        "subject",
        "counted",
        "code",
        "reason",
    }
    assert "approvals" in schemas["RunDetail"]["required"]
    assert "retries" in schemas["McpCall"]["required"]
    assert "retries" in MCP_CALL_COLUMNS


@pytest.mark.parametrize("path", ["/v1/approvals", f"/v1/approvals/{APPROVAL}"])
async def test_no_token_is_401_and_another_project_403(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 401
    assert "bearer token is required" in answer.json()["detail"]
    other = await client.get(
        path, params={"project_id": "globex"}, headers=viewer(OFFLINE.api_jwt_secret or "", "acme")
    )
    assert other.status_code == 403
    assert "globex" in other.json()["detail"]


def test_the_merge_writes_every_column_once_per_request_in_key_order() -> None:
    for column in APPROVAL_COLUMNS:
        assert f" {column}," in UPSERT_APPROVALS or f" {column})" in UPSERT_APPROVALS
    assert (
        "ORDER BY project_id, approval_id ON CONFLICT (project_id, approval_id) DO UPDATE"
        in UPSERT_APPROVALS
    )
    assert " WHERE " in UPSERT_APPROVALS  # only rows that change are rewritten
    assert "token," not in UPSERT_APPROVALS.replace("token_id,", "")

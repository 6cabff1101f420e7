"""`GET /v1/mcp-calls` and the run detail's tool calls before any database: what the OpenAPI
document publishes, and the SQL merge the projector writes with."""

from __future__ import annotations

from typing import Any

import pytest

from awooop.projector.adapters.mcp_call_writer import UPSERT_MCP_CALLS
from awooop.projector.domain.mcp_calls import MCP_CALL_COLUMNS, MCP_CALL_STATUSES
from support.query_api import openapi_document

pytestmark = pytest.mark.unit


@pytest.fixture
async def document() -> dict[str, Any]:
    return await openapi_document()


async def test_the_listing_publishes_its_parameters_and_refusals(document: dict[str, Any]) -> None:
    listing = document["paths"]["/v1/mcp-calls"]["get"]
    assert {"200", "400", "401", "403", "422"} <= set(listing["responses"])
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert set(parameters) >= {"project_id", "run_id", "tool", "status", "gate", "code", "limit"}
    assert (parameters["limit"]["default"], parameters["limit"]["maximum"]) == (100, 500)
    status = next(s for s in parameters["status"]["anyOf"] if "enum" in s)
    assert status["enum"] == list(MCP_CALL_STATUSES)
    gate = next(s for s in parameters["gate"]["anyOf"] if s.get("type") == "integer")
    assert (gate["minimum"], gate["maximum"]) == (1, 5)
    run_id = next(s for s in parameters["run_id"]["anyOf"] if "format" in s)
    assert run_id["format"] == "uuid"


async def test_a_call_shows_every_column_and_the_run_detail_its_calls(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    call = schemas["McpCall"]
    shown = set(MCP_CALL_COLUMNS) - {"project_id"}
    assert set(call["properties"]) == shown
    assert set(call["required"]) == shown
    assert call["properties"]["status"]["enum"] == list(MCP_CALL_STATUSES)
    assert "mcp_calls" in schemas["RunDetail"]["required"]


def test_the_merge_writes_every_column_once_per_call_in_key_order() -> None:
    for column in MCP_CALL_COLUMNS:
        assert f" {column}," in UPSERT_MCP_CALLS or f" {column})" in UPSERT_MCP_CALLS
    assert "ORDER BY project_id, call_id ON CONFLICT (project_id, call_id) DO UPDATE" in (
        UPSERT_MCP_CALLS
    )
    assert " WHERE " in UPSERT_MCP_CALLS  # only rows that change are rewritten

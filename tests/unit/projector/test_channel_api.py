"""`GET /v1/channel-events` and the run detail's channel parts before any database: what the
OpenAPI document publishes, and the prefix pattern handed to LIKE."""

from __future__ import annotations

from typing import Any

import pytest

from awooop.projector.api.channel_queries import like_prefix
from awooop.projector.domain.channel_events import CHANNEL_OUTCOMES
from support.query_api import openapi_document

pytestmark = pytest.mark.unit


@pytest.fixture
async def document() -> dict[str, Any]:
    return await openapi_document()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


async def test_the_listing_publishes_its_parameters_and_refusals(document: dict[str, Any]) -> None:
    listing = document["paths"]["/v1/channel-events"]["get"]
    assert {"200", "400", "401", "403", "422"} <= set(listing["responses"])
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert set(parameters) >= {"channel_type", "provider_event_id_prefix", "outcome", "limit"}
    assert (parameters["limit"]["default"], parameters["limit"]["maximum"]) == (100, 500)
    assert parameters["limit"]["minimum"] == 1
    outcome = next(s for s in parameters["outcome"]["anyOf"] if "enum" in s)
    assert outcome["enum"] == list(CHANNEL_OUTCOMES)
    prefix = next(s for s in parameters["provider_event_id_prefix"]["anyOf"] if "pattern" in s)
    assert (prefix["minLength"], prefix["maxLength"]) == (1, 256)


async def test_the_shapes_name_every_outcome_field_and_the_delivery(
    document: dict[str, Any],
) -> None:
    event = _schema(document, "ChannelEvent")
    assert set(event["required"]) >= {"event_id", "kind", "outcome", "occurred_at"}
    assert event["properties"]["outcome"]["enum"] == list(CHANNEL_OUTCOMES)
    for field in ("run_id", "queued_on", "busy_with", "duplicate_of", "code", "reason"):
        assert field in event["properties"]
    assert "text" not in event["properties"]  # only ever display_text
    outbound = _schema(document, "OutboundMessage")
    for field in ("status", "provider_message_ids", "attempts", "code", "reason", "reported_at"):
        assert field in outbound["required"]
    assert "button_labels" in outbound["properties"]
    assert "inbound" in _schema(document, "RunDetail")["required"]


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [
        ("7:1", "7:1%"),
        ("x_", "x\\_%"),
        ("50%", "50\\%%"),
        ("a\\b", "a\\\\b%"),
        ("'; --", "'; --%"),
    ],
)
def test_a_prefix_matches_only_itself(prefix: str, pattern: str) -> None:
    assert like_prefix(prefix) == pattern

"""docs/asyncapi/outbound.json is what outbound delivery's faststream broker describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from awooop.contracts.events.payloads.channel import DeliveryReported, OutboundRequested
from awooop.ingress.outbound.asyncapi import (
    DOCUMENT,
    REGENERATE_COMMAND,
    outbound_document,
    outbound_document_text,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_document_is_current() -> None:
    path = ROOT / DOCUMENT
    committed = path.read_text(encoding="utf-8") if path.exists() else "<missing>"
    assert committed == outbound_document_text(), (
        f"{DOCUMENT} is out of date with the outbound subscriber; regenerate it from the "
        f"repository root with `{REGENERATE_COMMAND}`"
    )


def test_it_receives_outbound_requests_and_sends_delivery_reports() -> None:
    document = outbound_document()
    operations = {
        document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]: op["action"]
        for op in document["operations"].values()
    }
    assert operations == {
        "awooop.channel.outbound.v1": "receive",
        "awooop.channel.delivery.v1": "send",
    }
    schemas = document["components"]["schemas"]
    request = schemas["OutboundRequestedEnvelope"]["properties"]
    assert request["event_type"]["const"] == OutboundRequested.event_type
    assert request["schema_version"]["const"] == OutboundRequested.schema_version
    assert set(schemas["OutboundRequested"]["properties"]) == set(OutboundRequested.model_fields)
    report = schemas["DeliveryReportedEnvelope"]["properties"]
    assert report["event_type"]["const"] == DeliveryReported.event_type
    assert set(schemas["DeliveryReported"]["properties"]) == set(DeliveryReported.model_fields)


def test_the_document_is_valid_json_with_sorted_keys() -> None:
    text = outbound_document_text()
    assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text

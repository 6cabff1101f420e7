"""The committed AsyncAPI document of the bridges equals what the code generates, and
documents the inbound topic with the inbound record's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from awooop.contracts.records.inbound import InboundRecord
from awooop.contracts.registries.topics import Topics
from awooop.ingress.bridges.asyncapi import FILE_NAME, REGENERATE_COMMAND, bridges_document

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "asyncapi" / FILE_NAME


def test_the_committed_document_is_current() -> None:
    actual = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else "<missing>"
    assert actual == bridges_document(), (
        f"docs/asyncapi/{FILE_NAME} is out of date with the bridges' publisher; "
        f"regenerate it from the repository root with `{REGENERATE_COMMAND}`"
    )


def test_the_document_publishes_the_inbound_record_on_the_inbound_topic() -> None:
    """Break caught: a publisher documented without its schema, or on another topic."""
    document = json.loads(bridges_document())
    (channel,) = document["channels"].values()
    assert channel["address"] == Topics.CHANNEL_INBOUND.name
    (operation,) = document["operations"].values()
    assert operation["action"] == "send"
    schema = document["components"]["schemas"][InboundRecord.__name__]
    assert set(schema["required"]) == {
        name for name, field in InboundRecord.model_fields.items() if field.is_required()
    }
    assert schema["additionalProperties"] is False

"""The channel hub's revised events read their old shapes: `ingress.message_received` v2
(and v1), `channel.outbound_requested` v1 and `run.started` v2 decode to the current
models with the fields they never had filled in conservatively."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.events.payloads.ingress import (
    LEGACY_AGENT_ID,
    WITHHELD_DISPLAY_TEXT,
    MessageReceived,
)
from awooop.contracts.events.payloads.run import RunStarted
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_event_id, new_trace_id

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()


def _record(event_type: str, version: int, payload: dict[str, Any]) -> bytes:
    event_id = new_event_id()
    return json.dumps(
        {
            "event_id": str(event_id),
            "event_type": event_type,
            "schema_version": version,
            "occurred_at": "2026-12-01T10:00:00+00:00",
            "project_id": "acme",
            "stream_type": "inbound",
            "stream_id": "acme:telegram:42:7",
            "stream_seq": 1,
            "trace_id": new_trace_id(),
            "correlation_id": str(event_id),
            "causation_id": None,
            "actor": "service:ingress",
            "producer": "ingress",
            "payload": payload,
        }
    ).encode()


MESSAGE_V2 = {
    "channel_type": "telegram",
    "provider_event_id": "42:7",
    "platform_subject_id": "acme:telegram:6",
    "chat_id": "5",
    "text": "my card is 4111 1111 1111 1111",
    "received_at": "2026-12-01T09:59:59+00:00",
    "agent_id": "helpdesk",
    "revisions": ["telegram@1:0123456789ab"],
}


def test_a_v2_message_upcasts_with_its_text_withheld_from_display() -> None:
    decoded = CODEC.decode(_record("ingress.message_received", 2, MESSAGE_V2))
    payload = decoded.payload
    assert isinstance(payload, MessageReceived)
    assert decoded.schema_version == MessageReceived.schema_version == 3
    assert payload.text == MESSAGE_V2["text"]  # the agent still gets what was sent
    assert payload.display_text == WITHHELD_DISPLAY_TEXT  # never shown unredacted
    assert (payload.thread_id, payload.message_id, payload.command) == (None, None, None)
    assert (payload.attachments, payload.entities, payload.edited) == ((), (), False)


def test_a_v1_message_goes_through_the_whole_chain() -> None:
    v1 = {k: v for k, v in MESSAGE_V2.items() if k not in ("agent_id", "revisions")}
    payload = CODEC.decode(_record("ingress.message_received", 1, v1)).payload
    assert (payload.agent_id, payload.revisions) == (LEGACY_AGENT_ID, ())
    assert payload.display_text == WITHHELD_DISPLAY_TEXT


def test_a_v1_outbound_message_upcasts_unthreaded_without_buttons() -> None:
    v1 = {
        "run_id": str(uuid.uuid4()),
        "kind": "final",
        "channel_type": "telegram",
        "chat_id": "5",
        "text": "done",
        "deliver_before": "2026-12-01T10:10:00+00:00",
    }
    payload = CODEC.decode(_record("channel.outbound_requested", 1, v1)).payload
    assert isinstance(payload, OutboundRequested)
    assert (payload.thread_id, payload.reply_to, payload.buttons, payload.edit_of) == (
        None,
        None,
        (),
        None,
    )


def test_a_v2_run_start_upcasts_to_the_top_of_its_chat() -> None:
    v2 = {
        "agent_id": "helpdesk",
        "channel_type": "slack",
        "chat_id": "C0123",
        "platform_subject_id": "acme:slack:U0123",
        "trigger_event_id": str(new_event_id()),
        "mode": "active",
        "revisions": ["helpdesk@1:0123456789ab"],
        "agent_revision": "helpdesk@1:0123456789ab",
    }
    payload = CODEC.decode(_record("run.started", 2, v2)).payload
    assert isinstance(payload, RunStarted)
    assert (payload.thread_id, payload.reply_to) == (None, None)

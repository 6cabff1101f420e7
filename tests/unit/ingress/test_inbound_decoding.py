"""Decoding inbound records: every refusal becomes a poison record with its registered code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import PoisonRecord, RawRecord
from awooop.ingress.domain import InboundMessage
from awooop.ingress.handlers import IngressProcessor
from support.contracts import agent_body, telegram_binding_body, view_of

pytestmark = pytest.mark.unit

GOOD: dict[str, Any] = {
    "project_id": "acme",
    "channel_type": "telegram",
    "provider_event_id": "42:7",
    "received_at": "2025-03-01T12:00:00Z",
    "payload": {
        "update_id": 7,
        "message": {"message_id": 70, "chat": {"id": 5}, "from": {"id": 6}, "text": "hi"},
    },
}


CONTRACTS = ContractSource(
    view_of(
        ("acme", {"demo-agent": agent_body(), "telegram": telegram_binding_body("42")}),
        ("globex", {"lonely": telegram_binding_body("43", agent_id="nobody")}),
    )
)


def _raw(value: bytes | None) -> RawRecord:
    return RawRecord(Topics.CHANNEL_INBOUND.name, 3, 17, b"acme:42:7", value, (), 0)


def _poison(value: bytes | None) -> PoisonRecord:
    with pytest.raises(PoisonRecord) as caught:
        IngressProcessor(CONTRACTS).decode(_raw(value))
    return caught.value


def test_every_record_is_handled_and_a_good_one_decodes_to_a_message() -> None:
    processor = IngressProcessor(CONTRACTS)
    raw = _raw(json.dumps(GOOD).encode())
    assert processor.handles(raw)
    decoded = processor.decode(raw)
    assert decoded.raw is raw
    assert isinstance(decoded.body, InboundMessage)
    assert decoded.body.payload.platform_subject_id == "acme:telegram:6"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "has no value"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (json.dumps({**GOOD, "provider_event_id": "42:8"}).encode(), "does not end in ':7'"),
        (json.dumps({**GOOD, "channel_type": "whatsapp"}).encode(), "channel_type"),
        (json.dumps({**GOOD, "payload": {"update_id": "7"}}).encode(), "update_id"),
    ],
)
def test_invalid_records_are_poison_with_the_inbound_invalid_code(
    value: bytes | None, reason: str
) -> None:
    poison = _poison(value)
    assert poison.code == "E-INBOUND-INVALID"
    assert reason in poison.reason


def test_an_oversize_record_is_poison_with_the_oversize_code() -> None:
    poison = _poison(b" " * (MAX_RECORD_BYTES + 1))
    assert poison.code == "E-INBOUND-OVERSIZE"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"provider_event_id": "44:7"}, "telegram bot 44 chat 5: no active channel_binding"),
        ({"project_id": "globex"}, "telegram bot 42 chat 5 is bound to another project"),
        (
            {"project_id": "globex", "provider_event_id": "43:7"},
            "names agent 'nobody', not active",
        ),
    ],
)
def test_a_record_no_active_binding_gives_to_an_active_agent_is_poison_as_unbound(
    changes: dict[str, Any], reason: str
) -> None:
    poison = _poison(json.dumps({**GOOD, **changes}).encode())
    assert poison.code == "E-INBOUND-UNBOUND"
    assert reason in poison.reason


def test_a_bound_record_names_its_agent_and_binding_revision() -> None:
    decoded = IngressProcessor(CONTRACTS).decode(_raw(json.dumps(GOOD).encode()))
    assert decoded.body.payload.agent_id == "demo-agent"
    assert decoded.body.payload.revisions == (CONTRACTS.view.refs()[("acme", "telegram")],)

"""The inbound record: what bridges publish on awooop.channel.inbound.v1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from awooop.contracts import MAX_RECORD_BYTES, InboundRecordInvalid, parse_inbound
from awooop.contracts.records.inbound import InboundRecordOversize

pytestmark = pytest.mark.unit

TELEGRAM_UPDATE: dict[str, Any] = {
    "update_id": 10000,
    "message": {
        "message_id": 1365,
        "date": 1441645532,
        "chat": {"id": 1111111, "type": "private", "first_name": "Ada"},
        "from": {"id": 1111111, "is_bot": False, "first_name": "Ada", "language_code": "en"},
        "text": "/start",
        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
    },
}


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "project_id": "acme",
        "channel_type": "telegram",
        "provider_event_id": "123456789:10000",
        "received_at": "2025-03-01T12:00:00.250Z",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "payload": TELEGRAM_UPDATE,
    }
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    return record


def _bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def test_good_telegram_record_is_accepted_with_its_payload_as_received() -> None:
    record = parse_inbound(_bytes(_record()))
    assert record.project_id == "acme"
    assert record.channel_type == "telegram"
    assert record.provider_event_id == "123456789:10000"
    assert record.received_at.utcoffset() is not None
    assert record.payload == TELEGRAM_UPDATE


def test_traceparent_is_optional() -> None:
    assert parse_inbound(_bytes(_record(traceparent=None))).traceparent is None


def test_slack_record_is_accepted() -> None:
    slack = {"type": "event_callback", "event_id": "Ev0PV52K25", "event": {"type": "message"}}
    record = parse_inbound(
        _bytes(_record(channel_type="slack", provider_event_id="Ev0PV52K25", payload=slack))
    )
    assert record.payload["event"] == {"type": "message"}


@pytest.mark.parametrize(
    "missing", ["project_id", "channel_type", "provider_event_id", "received_at", "payload"]
)
def test_missing_field_is_refused(missing: str) -> None:
    with pytest.raises(InboundRecordInvalid, match=missing) as caught:
        parse_inbound(_bytes(_record(**{missing: None})))
    assert caught.value.code == "E-INBOUND-INVALID"


def test_extra_field_is_refused() -> None:
    with pytest.raises(InboundRecordInvalid, match="headers"):
        parse_inbound(_bytes(_record(headers={"x": "y"})))


@pytest.mark.parametrize("channel_type", ["whatsapp", "Telegram", "", 1])
def test_bad_channel_type_is_refused(channel_type: Any) -> None:
    with pytest.raises(InboundRecordInvalid, match="channel_type"):
        parse_inbound(_bytes(_record(channel_type=channel_type)))


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "garbage",
        "",
    ],
)
def test_bad_traceparent_is_refused(traceparent: str) -> None:
    with pytest.raises(InboundRecordInvalid, match="traceparent"):
        parse_inbound(_bytes(_record(traceparent=traceparent)))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider_event_id": ""}, "provider_event_id"),
        ({"provider_event_id": "x" * 257}, "provider_event_id"),
        ({"project_id": "Acme Corp"}, "project_id"),
        ({"received_at": "2025-03-01T12:00:00"}, "received_at"),
        ({"payload": ["not", "an", "object"]}, "payload"),
    ],
)
def test_other_bad_fields_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InboundRecordInvalid, match=field):
        parse_inbound(_bytes(_record(**changes)))


@pytest.mark.parametrize(
    ("value", "reason"), [(b"{", "not JSON"), (b"[]", "not an object"), (b"\xff", "not")]
)
def test_bytes_that_are_not_a_json_object_are_refused(value: bytes, reason: str) -> None:
    with pytest.raises(InboundRecordInvalid, match=reason):
        parse_inbound(value)


def test_oversize_record_is_refused_with_its_size() -> None:
    value = _bytes(_record(payload={"text": "x" * MAX_RECORD_BYTES}))
    with pytest.raises(InboundRecordOversize, match=f"{len(value)} bytes") as caught:
        parse_inbound(value)
    assert caught.value.code == "E-INBOUND-OVERSIZE"
    assert isinstance(caught.value, InboundRecordInvalid)


def test_record_of_exactly_the_limit_is_not_refused_for_size() -> None:
    base = _bytes(_record(payload={"text": ""}))
    value = _bytes(_record(payload={"text": "x" * (MAX_RECORD_BYTES - len(base))}))
    assert len(value) == MAX_RECORD_BYTES
    assert len(parse_inbound(value).payload["text"]) == MAX_RECORD_BYTES - len(base)


def test_record_is_frozen() -> None:
    record = parse_inbound(_bytes(_record()))
    with pytest.raises(ValueError, match="frozen"):
        record.project_id = "other"  # type: ignore[misc]

"""The Telegram normaliser: given an inbound record, then a message or a refusal with a reason."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts.events.payloads.fields import PLATFORM_SUBJECT_PATTERN
from awooop.contracts.records.envelope import new_event_id
from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import (
    Binding,
    InboundRefused,
    InboundUnbound,
    Unbound,
    message_received,
    normalise,
    subject_key,
)
from awooop.ingress.domain.telegram import check_provider_event_id

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UPDATE: dict[str, Any] = {
    "update_id": 10000,
    "message": {
        "message_id": 1365,
        "date": 1441645532,
        "chat": {"id": -1001234567, "type": "supergroup", "title": "ops"},
        "from": {"id": 1111111, "is_bot": False, "first_name": "Ada"},
        "text": "status of prod?",
    },
}


BINDING_REF = "ops-telegram@2:0123456789ab"


class _Bindings:
    """Bot 123456789 is bound: its chat -1001234567 to project acme's `helpdesk`, and its
    chat -42 to project `globex`; nothing else is."""

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound:
        if bot_id == "123456789" and chat_id == "-1001234567":
            return Binding("acme", "helpdesk", BINDING_REF)
        if bot_id == "123456789" and chat_id == "-42":
            return Binding("globex", "sales", "globex-telegram@1:0123456789ab")
        return Unbound("no active channel_binding")


BINDINGS = _Bindings()


def _record(payload: dict[str, Any] | None = None, **changes: Any) -> InboundRecord:
    fields: dict[str, Any] = {
        "project_id": "acme",
        "channel_type": "telegram",
        "provider_event_id": "123456789:10000",
        "received_at": "2025-03-01T13:00:00.250+01:00",
        "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        "payload": copy.deepcopy(UPDATE) if payload is None else payload,
    }
    fields.update(changes)
    return InboundRecord.model_validate(fields)


def _refusal(record: InboundRecord) -> str:
    with pytest.raises(InboundRefused) as caught:
        normalise(record, BINDINGS)
    return caught.value.reason


def test_a_text_message_names_its_sender_chat_and_text() -> None:
    message = normalise(_record(), BINDINGS)
    payload = message.payload
    assert message.project_id == "acme"
    assert payload.channel_type == "telegram"
    assert payload.provider_event_id == "123456789:10000"
    assert payload.platform_subject_id == "acme:telegram:1111111"
    assert re.fullmatch(PLATFORM_SUBJECT_PATTERN, payload.platform_subject_id)
    assert payload.chat_id == "-1001234567"
    assert payload.text == "status of prod?"
    assert message.trace_id == TRACE_ID
    assert message.stream_id == "acme:telegram:123456789:10000"
    assert message.dedup_key == ("acme", "telegram", "123456789:10000")


def test_received_at_is_kept_as_the_same_instant_in_utc() -> None:
    received = normalise(_record(), BINDINGS).payload.received_at
    assert received == dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
    assert received.utcoffset() == dt.timedelta(0)


def test_no_traceparent_or_an_all_zero_trace_leaves_the_trace_to_ingress() -> None:
    assert normalise(_record(traceparent=None), BINDINGS).trace_id is None
    zero = f"00-{'0' * 32}-00f067aa0ba902b7-01"
    assert normalise(_record(traceparent=zero), BINDINGS).trace_id is None


def test_slack_is_refused_until_it_is_supported() -> None:
    slack = {"type": "event_callback", "event_id": "Ev0PV52K25", "event": {"type": "message"}}
    record = _record(slack, channel_type="slack", provider_event_id="Ev0PV52K25")
    assert "slack not supported yet" in _refusal(record)


@pytest.mark.parametrize(
    ("provider_event_id", "expected"),
    [
        ("123456789:10001", "does not end in ':10000'"),
        ("10000", "does not end in ':10000'"),
        (":10000", "numeric bot id"),
        ("bot:10000", "numeric bot id"),
        ("12:34:10000", "numeric bot id"),
        ("١٢٣:10000", "numeric bot id"),  # non-ASCII digits are not a bot id
        ("123456789:010000", "does not end in ':10000'"),
    ],
)
def test_a_provider_event_id_that_does_not_describe_the_update_is_refused(
    provider_event_id: str, expected: str
) -> None:
    assert expected in _refusal(_record(provider_event_id=provider_event_id))


def test_an_update_without_a_numeric_update_id_is_refused() -> None:
    for update_id in ("10000", True, None):
        update = copy.deepcopy(UPDATE)
        update["update_id"] = update_id
        assert "no integer update_id" in _refusal(_record(update))


def test_updates_other_than_text_messages_are_refused_saying_what_they_carry() -> None:
    edited = {"update_id": 10000, "edited_message": UPDATE["message"]}
    assert "it carries edited_message" in _refusal(_record(edited))
    sticker = copy.deepcopy(UPDATE)
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "x"}
    assert "a message without text" in _refusal(_record(sticker))
    empty = copy.deepcopy(UPDATE)
    empty["message"]["text"] = ""
    assert "no message.text" in _refusal(_record(empty))


@pytest.mark.parametrize(
    ("field", "value"),
    [("from", None), ("from", {"id": "1111111"}), ("chat", {"id": True}), ("chat", [])],
)
def test_a_message_without_integer_sender_or_chat_ids_is_refused(field: str, value: Any) -> None:
    update = copy.deepcopy(UPDATE)
    if value is None:
        del update["message"][field]
    else:
        update["message"][field] = value
    assert f"no integer {field}.id" in _refusal(_record(update))


def test_a_provider_event_id_too_long_for_a_stream_id_is_refused() -> None:
    too_long = "1" * 250 + ":10000"
    assert "too long" in _refusal(_record(provider_event_id=too_long))


def test_the_envelope_starts_the_inbound_stream_and_correlates_to_itself() -> None:
    message = normalise(_record(), BINDINGS)
    event_id = new_event_id()
    at = dt.datetime(2025, 3, 1, 12, 0, 1, tzinfo=dt.UTC)
    envelope = message_received(message, event_id=event_id, occurred_at=at, trace_id=TRACE_ID)
    assert envelope.event_id == event_id
    assert envelope.event_type == "ingress.message_received"
    assert envelope.schema_version == 2
    assert envelope.occurred_at == at
    assert envelope.project_id == "acme"
    assert (envelope.stream_type, envelope.stream_id, envelope.stream_seq) == (
        "inbound",
        "acme:telegram:123456789:10000",
        1,
    )
    assert envelope.correlation_id == str(event_id)
    assert envelope.causation_id is None
    assert envelope.trace_id == TRACE_ID
    assert (envelope.actor, envelope.producer) == ("service:ingress", "ingress")
    assert envelope.payload == message.payload
    assert subject_key(message) == "acme:acme:telegram:1111111"


@given(
    bot_id=st.integers(min_value=1, max_value=2**63),
    update_id=st.integers(min_value=0, max_value=2**31),
    other=st.integers(min_value=0, max_value=2**31),
)
def test_only_the_update_own_id_after_a_numeric_bot_id_is_accepted(
    bot_id: int, update_id: int, other: int
) -> None:
    check_provider_event_id(f"{bot_id}:{update_id}", update_id)
    if other != update_id:
        with pytest.raises(InboundRefused):
            check_provider_event_id(f"{bot_id}:{other}", update_id)


@given(user_id=st.integers(min_value=1, max_value=2**53), text=st.text(min_size=1))
def test_every_sender_becomes_a_valid_subject_and_any_text_is_kept(user_id: int, text: str) -> None:
    update = copy.deepcopy(UPDATE)
    update["message"]["from"]["id"] = user_id
    update["message"]["text"] = text
    payload = normalise(_record(update), BINDINGS).payload
    assert payload.platform_subject_id == f"acme:telegram:{user_id}"
    assert re.fullmatch(PLATFORM_SUBJECT_PATTERN, payload.platform_subject_id)
    assert payload.text == text


def test_the_message_goes_to_the_bound_agent_and_names_the_binding_revision() -> None:
    payload = normalise(_record(), BINDINGS).payload
    assert (payload.agent_id, payload.revisions) == ("helpdesk", (BINDING_REF,))


def test_a_chat_no_binding_covers_is_refused_as_unbound() -> None:
    update = copy.deepcopy(UPDATE)
    update["message"]["chat"]["id"] = -7
    with pytest.raises(InboundUnbound) as caught:
        normalise(_record(update), BINDINGS)
    assert caught.value.code == "E-INBOUND-UNBOUND"
    assert caught.value.reason == "telegram bot 123456789 chat -7: no active channel_binding"


def test_a_chat_bound_to_another_project_is_refused_without_naming_that_project() -> None:
    update = copy.deepcopy(UPDATE)
    update["message"]["chat"]["id"] = -42
    with pytest.raises(InboundUnbound) as caught:
        normalise(_record(update), BINDINGS)
    assert "another project than 'acme'" in caught.value.reason
    assert "globex" not in caught.value.reason

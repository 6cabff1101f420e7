"""The codec turns record values into the right concrete envelope, or says why not."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from awooop.contracts import (
    MAX_RECORD_BYTES,
    Envelope,
    EnvelopeCodec,
    EnvelopeInvalid,
    EnvelopeOversize,
    EnvelopeUndecodable,
    EventPayload,
    EventTypeRegistry,
    UnknownEventType,
    UnsupportedSchemaVersion,
    new_envelope,
)
from awooop.contracts.events.payloads import (
    MessageReceived,
    RunCompleted,
    RunFailed,
    RunStarted,
    ToolCallBlocked,
    ToolCallRequested,
    ToolCallSucceeded,
)

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()

REF = "restart-k8s@1:0123456789ab"
PAYLOADS: list[EventPayload] = [
    MessageReceived(
        channel_type="slack",
        provider_event_id="Ev0PV52K25",
        platform_subject_id="acme:slack:U061F7AUR",
        chat_id="C0LAN2Q65",
        text="restart the web pods please",
        display_text="restart the web pods please",
        received_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        agent_id="demo-agent",
        revisions=(),
    ),
    ToolCallRequested(
        call_id="call-1",
        tool="restart__k8s",
        arguments={"deployment": "web", "replicas": 3, "dry_run": False},
        execute_before=datetime(2025, 3, 1, 12, 5, tzinfo=UTC),
        revisions=(REF,),
    ),
    ToolCallSucceeded(call_id="call-1", result={"restarted": ["web-1", "web-2"]}, revisions=(REF,)),
    ToolCallSucceeded(call_id="call-2", result="ok", revisions=(REF,)),
    ToolCallBlocked(call_id="call-3", gate=5, code="E-MCP-GATE-008", revisions=(REF,)),
    RunCompleted(reply="Done: web restarted.", suppressed=True),
    RunFailed(code="E-SCHEMA-001", reason="output invalid after 3 retries"),
]


@pytest.fixture
def wrap(envelope_fields: Callable[..., dict[str, Any]]) -> Callable[[EventPayload], Envelope[Any]]:
    """Wrap a payload in a valid envelope."""
    return lambda payload: new_envelope(payload, **envelope_fields())


def test_round_trip_is_equal(run_started: Envelope[RunStarted]) -> None:
    value = CODEC.encode(run_started)
    decoded = CODEC.decode(value, run_started.schema_version)
    assert decoded == run_started
    assert type(decoded) is type(run_started)
    assert CODEC.encode(decoded) == value


def test_encoding_is_compact_utf8_json(run_started: Envelope[RunStarted]) -> None:
    value = CODEC.encode(run_started)
    assert b": " not in value
    assert b", " not in value
    document = json.loads(value.decode("utf-8"))
    assert document["event_type"] == "run.started"
    assert document["event_id"] == str(run_started.event_id)
    assert document["occurred_at"] == "2025-03-01T12:30:05.123456Z"
    assert document["payload"]["agent_id"] == "helpdesk"


def test_non_ascii_text_round_trips(wrap: Callable[[EventPayload], Envelope[Any]]) -> None:
    envelope = wrap(RunCompleted(reply="Готово ✅ — 完成", suppressed=False))
    value = CODEC.encode(envelope)
    assert "Готово ✅ — 完成".encode() in value
    assert CODEC.decode(value).payload == envelope.payload


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_union_picks_the_payload_class_of_the_event_type(
    payload: EventPayload, wrap: Callable[[EventPayload], Envelope[Any]]
) -> None:
    envelope = wrap(payload)
    decoded = CODEC.decode(CODEC.encode(envelope), payload.schema_version, payload.event_type)
    assert type(decoded.payload) is type(payload)
    assert decoded.event_type == type(payload).event_type
    assert decoded == envelope


def test_decode_without_headers_reads_the_body(run_started: Envelope[RunStarted]) -> None:
    assert CODEC.decode(CODEC.encode(run_started)) == run_started


def test_fast_path_with_headers_is_one_validate_json_of_the_concrete_class(
    run_started: Envelope[RunStarted], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    concrete = type(run_started)
    original = concrete.model_validate_json

    def counting(data: bytes, **kwargs: Any) -> Any:
        calls.append(data)
        return original(data, **kwargs)

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("the fast path parses the value once, as its concrete class")

    value = CODEC.encode(run_started)
    monkeypatch.setattr(concrete, "model_validate_json", counting)
    monkeypatch.setattr(TypeAdapter, "validate_json", forbidden)
    monkeypatch.setattr(json, "loads", forbidden)
    assert CODEC.decode(value, RunStarted.schema_version, "run.started") == run_started
    assert calls == [value]


def test_fast_path_without_headers_is_one_union_validate_json_call(
    run_started: Envelope[RunStarted], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    original = TypeAdapter.validate_json

    def counting(self: TypeAdapter[Any], data: bytes, **kwargs: Any) -> Any:
        calls.append(data)
        return original(self, data, **kwargs)

    def forbidden(*_: Any, **__: Any) -> Any:
        raise AssertionError("the fast path must not parse JSON a second time")

    value = CODEC.encode(run_started)
    CODEC.decode(value)  # build the union before counting
    monkeypatch.setattr(TypeAdapter, "validate_json", counting)
    monkeypatch.setattr(json, "loads", forbidden)
    assert CODEC.decode(value) == run_started
    assert calls == [value]


def test_unknown_event_type_in_the_body_raises(run_started: Envelope[RunStarted]) -> None:
    document = json.loads(CODEC.encode(run_started))
    document["event_type"] = "run.teleported"
    with pytest.raises(UnknownEventType) as caught:
        CODEC.decode(json.dumps(document).encode(), 1)
    assert caught.value.event_type == "run.teleported"
    assert caught.value.code == "E-EVENT-TYPE-UNKNOWN"


def test_unknown_event_type_in_the_header_raises_before_parsing() -> None:
    with pytest.raises(UnknownEventType):
        CODEC.decode(b"not even json", 1, "run.teleported")


def test_newer_version_in_header_raises(run_started: Envelope[RunStarted]) -> None:
    with pytest.raises(UnsupportedSchemaVersion) as caught:
        CODEC.decode(CODEC.encode(run_started), 4, "run.started")
    assert (caught.value.version, caught.value.current) == (4, 3)
    assert caught.value.code == "E-EVENT-VERSION-NEWER"


def test_newer_version_in_body_raises(run_started: Envelope[RunStarted]) -> None:
    document = json.loads(CODEC.encode(run_started))
    document["schema_version"] = 7
    with pytest.raises(UnsupportedSchemaVersion):
        CODEC.decode(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\x00garbage", "not"),
        (b"[1, 2]", "not an object"),
        (b'"run.started"', "not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_bytes_raise_decode_error(value: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeUndecodable, match=reason) as caught:
        CODEC.decode(value)
    assert caught.value.code == "E-DLQ-DECODE"


def _mutated(envelope: Envelope[Any], **changes: Any) -> bytes:
    document = json.loads(CODEC.encode(envelope))
    for key, value in changes.items():
        if value is None:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_type": None}, "event_type is missing"),
        ({"schema_version": None}, "schema_version is missing"),
        ({"schema_version": "1"}, "schema_version is missing or not an integer"),
        ({"project_id": "ACME"}, "project_id"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"event_id": "9f1c8c8e-8b7a-4b6e-9c1d-2f3e4a5b6c7d"}, "UUIDv7"),
        ({"occurred_at": "2025-03-01T12:30:05"}, "occurred_at"),
        ({"tenant": "acme"}, "tenant"),
        ({"payload": {"agent_id": "helpdesk"}}, "payload"),
    ],
)
def test_invalid_envelope_raises_with_reason(
    run_started: Envelope[RunStarted], changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(EnvelopeInvalid, match=reason) as caught:
        CODEC.decode(_mutated(run_started, **changes), 3)
    assert caught.value.code == "E-DLQ-INVALID"
    assert caught.value.reason


def test_header_event_type_must_agree_with_the_body(run_started: Envelope[RunStarted]) -> None:
    with pytest.raises(EnvelopeInvalid, match=r"header event_type 'run\.completed'"):
        CODEC.decode(CODEC.encode(run_started), 1, "run.completed")


def test_header_schema_version_must_agree_with_the_body(
    envelope_fields: Callable[..., dict[str, Any]],
) -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("test.counted", 2)
    class Counted(EventPayload):
        n: int

    registry.register_upcaster("test.counted", 1)(lambda payload: payload)
    codec = EnvelopeCodec(registry)
    value = codec.encode(new_envelope(Counted(n=1), **envelope_fields()))
    # A header claiming an older version than the body sends the record down the upcast
    # path, where the disagreement is caught rather than silently upcasting twice.
    with pytest.raises(EnvelopeInvalid, match="header schema_version 1 but body 2"):
        codec.decode(value, 1, "test.counted")
    with pytest.raises(EnvelopeInvalid, match="header schema_version 1 but body 2"):
        codec.decode(value, 1)


def test_oversize_record_is_refused_before_parsing() -> None:
    with pytest.raises(EnvelopeOversize) as caught:
        CODEC.decode(b" " * (MAX_RECORD_BYTES + 1))
    assert caught.value.code == "E-DLQ-OVERSIZE"


def test_union_is_rebuilt_when_a_type_is_registered_later(
    envelope_fields: Callable[..., dict[str, Any]],
) -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("test.first_happened", 1)
    class FirstHappened(EventPayload):
        n: int

    codec = EnvelopeCodec(registry)
    first = new_envelope(FirstHappened(n=1), **envelope_fields())
    assert codec.decode(codec.encode(first)) == first

    @registry.register_payload("test.second_happened", 1)
    class SecondHappened(EventPayload):
        label: str

    second = new_envelope(SecondHappened(label="x"), **envelope_fields())
    assert codec.decode(codec.encode(second)) == second
    assert codec.decode(codec.encode(first)) == first


def test_production_types_are_not_in_a_fresh_registry(run_started: Envelope[RunStarted]) -> None:
    codec = EnvelopeCodec(EventTypeRegistry())
    with pytest.raises(UnknownEventType):
        codec.decode(CODEC.encode(run_started), 1, "run.started")
    with pytest.raises(UnknownEventType):
        codec.decode(CODEC.encode(run_started))


def test_production_registry_holds_the_walking_skeleton_types() -> None:
    expected = {
        "ingress.message_received",
        "run.started",
        "run.tool_call_requested",
        "gateway.tool_call_succeeded",
        "gateway.tool_call_blocked",
        "run.completed",
        "run.cancelled",
        "run.failed",
        "run.timed_out",
        "run.tool_result_accepted",
        "run.message_rejected",
        "run.message_queued",
        "run.transition_refused",
        "run.approval_awaited",
        "gateway.approval_required",
        "gateway.tool_call_failed",
        "contract.draft_created",
        "contract.published",
        "contract.signed",
        "contract.activated",
        "contract.retired",
        "budget.tenant_killed",
        "budget.tenant_reset",
        "budget.scope_tripped",
        "channel.outbound_requested",
        "channel.delivery_reported",
        "ingress.button_pressed",
        "ingress.inbound_ignored",
        "ingress.duplicate_received",
        "ingress.inbound_rejected",
        "run.tool_call_approved",
        "gateway.tool_call_retried",
        "approval.requested",
        "approval.vote_recorded",
        "approval.vote_refused",
        "approval.granted",
        "approval.denied",
    }
    classes = CODEC.registry.payload_classes()
    assert {cls.event_type for cls in classes} == expected
    third = {
        "run.tool_call_requested",
        "run.started",
        "ingress.message_received",
        "gateway.tool_call_succeeded",
        "gateway.tool_call_blocked",
        "run.tool_result_accepted",
    }
    revised = {
        "run.approval_awaited",
        "channel.outbound_requested",
        "gateway.tool_call_failed",
        "gateway.approval_required",
        "run.completed",
        "run.failed",
    }
    assert {cls.event_type: cls.schema_version for cls in classes} == {
        name: 3 if name in third else 2 if name in revised else 1 for name in expected
    }
    assert CODEC.registry.missing_upcasters() == []


def test_version_1_decisions_are_lifted_to_the_revisions_they_named(
    run_started: Envelope[RunStarted],
) -> None:
    document = json.loads(CODEC.encode(run_started))
    document["schema_version"] = 1
    payload = document["payload"]
    del payload["revisions"], payload["agent_revision"]
    payload["revision"] = "builtin:" + "ab" * 32
    decoded = CODEC.decode(json.dumps(document).encode(), 1, "run.started")
    assert decoded.schema_version == RunStarted.schema_version
    assert decoded.payload.revisions == ("builtin:" + "ab" * 32,)
    assert decoded.payload.agent_revision == "builtin:" + "ab" * 32


def test_version_1_messages_were_all_for_the_one_built_in_agent(
    wrap: Callable[[EventPayload], Envelope[Any]],
) -> None:
    document = json.loads(CODEC.encode(wrap(PAYLOADS[0])))
    assert document["event_type"] == "ingress.message_received"
    document["schema_version"] = 1
    for field in ("agent_id", "revisions"):
        del document["payload"][field]
    decoded = CODEC.decode(json.dumps(document).encode(), 1, "ingress.message_received")
    assert (decoded.payload.agent_id, decoded.payload.revisions) == ("demo-agent", ())

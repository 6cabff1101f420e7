"""Old payload versions are upcast through the chain, never rejected.

The event type here is defined for the test only, in its own registry, so the
production registry keeps only real types (all at version 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts import (
    EnvelopeCodec,
    EnvelopeInvalid,
    EventPayload,
    EventTypeRegistry,
    MissingUpcaster,
    UnsupportedSchemaVersion,
    UpcastFailed,
    new_envelope,
    new_event_id,
)
from awooop.contracts.events.registry import DuplicateEventTypeError
from awooop.contracts.records.upcasting import DuplicateUpcasterError, UpcasterTable

pytestmark = pytest.mark.unit

REGISTRY = EventTypeRegistry()


@REGISTRY.register_payload("test.widget_renamed", 3)
class WidgetRenamed(EventPayload):
    """v1 had ``name``; v2 renamed it ``new_name``; v3 added ``old_name`` (maybe unknown)."""

    widget_id: str
    new_name: str
    old_name: str | None


@REGISTRY.register_upcaster("test.widget_renamed", 1)
def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    renamed = dict(payload)
    renamed["new_name"] = renamed.pop("name")
    return renamed


@REGISTRY.register_upcaster("test.widget_renamed", 2)
def _v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "old_name": None}


CODEC = EnvelopeCodec(REGISTRY)


def _record(version: int, payload: dict[str, Any], event_id: str | None = None) -> bytes:
    document = {
        "event_id": event_id or str(new_event_id()),
        "event_type": "test.widget_renamed",
        "schema_version": version,
        "occurred_at": "2025-03-01T12:00:00Z",
        "project_id": "acme",
        "stream_type": "widget",
        "stream_id": "w-1",
        "stream_seq": 4,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "correlation_id": "w-1",
        "causation_id": None,
        "actor": "acme:slack:U1",
        "producer": "widgets",
        "payload": payload,
    }
    return json.dumps(document).encode()


def test_v1_bytes_decode_to_the_current_model() -> None:
    event_id = str(new_event_id())
    envelope = CODEC.decode(_record(1, {"widget_id": "w-1", "name": "gear"}, event_id), 1)
    assert isinstance(envelope.payload, WidgetRenamed)
    assert envelope.payload == WidgetRenamed(widget_id="w-1", new_name="gear", old_name=None)
    assert envelope.schema_version == 3
    # Upcasting changes the payload only: the identity of the event is kept.
    assert str(envelope.event_id) == event_id
    assert envelope.stream_seq == 4


def test_v2_bytes_decode_through_the_rest_of_the_chain() -> None:
    value = _record(2, {"widget_id": "w-1", "new_name": "gear"})
    envelope = CODEC.decode(value, 2, "test.widget_renamed")
    assert envelope.payload == WidgetRenamed(widget_id="w-1", new_name="gear", old_name=None)


def test_current_bytes_take_the_fast_path(envelope_fields: Callable[..., dict[str, Any]]) -> None:
    current = new_envelope(
        WidgetRenamed(widget_id="w-1", new_name="gear", old_name="cog"), **envelope_fields()
    )
    assert CODEC.decode(CODEC.encode(current), 3) == current


def test_old_payload_that_is_invalid_after_upcasting_is_invalid() -> None:
    with pytest.raises(EnvelopeInvalid, match="widget_id"):
        CODEC.decode(_record(1, {"name": "gear"}), 1)


def test_upcaster_that_raises_is_an_upcast_failure() -> None:
    with pytest.raises(UpcastFailed, match="v1->v2") as caught:
        CODEC.decode(_record(1, {"widget_id": "w-1"}), 1)
    assert caught.value.code == "E-DLQ-UPCAST"


def test_missing_link_raises() -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("test.widget_renamed", 3)
    class Renamed(EventPayload):
        widget_id: str

    registry.register_upcaster("test.widget_renamed", 1)(lambda payload: payload)
    assert registry.missing_upcasters() == [("test.widget_renamed", 2)]
    with pytest.raises(MissingUpcaster) as caught:
        EnvelopeCodec(registry).decode(_record(1, {"widget_id": "w-1"}))
    assert (caught.value.event_type, caught.value.from_version) == ("test.widget_renamed", 2)
    assert caught.value.code == "E-DLQ-UPCAST"


def test_newer_than_known_version_raises() -> None:
    with pytest.raises(UnsupportedSchemaVersion, match="newer"):
        CODEC.decode(_record(4, {"widget_id": "w-1"}))
    with pytest.raises(UnsupportedSchemaVersion):
        CODEC.decode(_record(4, {"widget_id": "w-1"}), 4, "test.widget_renamed")


def test_old_record_whose_payload_is_not_an_object_is_invalid() -> None:
    with pytest.raises(EnvelopeInvalid, match="payload"):
        CODEC.decode(_record(1, ["w-1"]))  # type: ignore[arg-type]


def test_upcaster_returning_a_non_object_fails() -> None:
    table = UpcasterTable()
    table.add("test.widget_renamed", 1, lambda payload: [payload])  # type: ignore[arg-type,return-value]
    with pytest.raises(UpcastFailed, match="returned list"):
        table.upcast("test.widget_renamed", 1, 2, {})


def test_registrations_cannot_be_repeated() -> None:
    registry = EventTypeRegistry()

    @registry.register_payload("test.thing_happened", 1)
    class ThingHappened(EventPayload):
        pass

    with pytest.raises(DuplicateEventTypeError):
        registry.register_payload("test.thing_happened", 1)(type("Other", (EventPayload,), {}))
    with pytest.raises(DuplicateEventTypeError):
        registry.register_payload("test.other_happened", 1)(ThingHappened)
    registry.register_upcaster("test.thing_happened", 1)(lambda payload: payload)
    with pytest.raises(DuplicateUpcasterError):
        registry.register_upcaster("test.thing_happened", 1)(lambda payload: payload)


@pytest.mark.parametrize(("event_type", "version"), [("Thing", 1), ("thing", 1), ("a.b", 0)])
def test_malformed_registrations_are_refused(event_type: str, version: int) -> None:
    with pytest.raises(ValueError, match=r"malformed|>= 1"):
        EventTypeRegistry().register_payload(event_type, version)


_texts = st.text(min_size=1, max_size=40)


@given(widget_id=_texts, name=_texts, version=st.sampled_from([1, 2]))
def test_any_old_widget_payload_upcasts_to_the_same_facts(
    widget_id: str, name: str, version: int
) -> None:
    payload = {"widget_id": widget_id, ("name" if version == 1 else "new_name"): name}
    envelope = CODEC.decode(_record(version, payload), version)
    assert envelope.payload == WidgetRenamed(widget_id=widget_id, new_name=name, old_name=None)
    assert envelope.schema_version == 3


@given(
    steps=st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=6),
    value=st.integers(),
    data=st.data(),
)
def test_a_chain_applies_every_link_once_in_order(
    steps: list[int], value: int, data: st.DataObject
) -> None:
    table = UpcasterTable()
    for offset, step in enumerate(steps):
        version = offset + 1

        def link(payload: dict[str, Any], step: int = step, version: int = version) -> Any:
            assert payload["at"] == version
            return {"at": version + 1, "value": payload["value"] + step}

        table.add("test.counted", version, link)
    current = len(steps) + 1
    start = data.draw(st.integers(min_value=1, max_value=current), label="start")
    result = table.upcast("test.counted", start, current, {"at": start, "value": value})
    assert result == {"at": current, "value": value + sum(steps[start - 1 :])}

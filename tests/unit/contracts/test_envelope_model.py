"""The envelope refuses every malformed field and keeps its invariants."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from awooop.contracts import Envelope, new_envelope, new_event_id, new_trace_id
from awooop.contracts.events.payloads import RunCompleted, RunStarted
from awooop.contracts.records.envelope import is_valid_trace_id

pytestmark = pytest.mark.unit


def test_new_event_id_is_uuid7_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(50)]
    assert all(type(i) is uuid.UUID and i.version == 7 for i in ids)
    assert len(set(ids)) == len(ids)
    # UUIDv7 starts with a millisecond timestamp: later ids never sort before earlier ms.
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)


def test_new_trace_id_is_w3c() -> None:
    trace_ids = {new_trace_id() for _ in range(50)}
    assert len(trace_ids) == 50
    assert all(is_valid_trace_id(t) for t in trace_ids)


def test_new_envelope_takes_type_and_version_from_the_payload(
    run_started: Envelope[RunStarted],
) -> None:
    assert run_started.event_type == "run.started"
    assert run_started.schema_version == 3
    assert run_started.event_id.version == 7
    assert run_started.causation_id is None


def test_envelope_is_frozen(run_started: Envelope[RunStarted]) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        run_started.stream_seq = 2  # type: ignore[misc]


@pytest.fixture
def refused(
    envelope_fields: Callable[..., dict[str, Any]], run_started_payload: RunStarted
) -> Callable[..., str]:
    """Build an envelope with ``overrides``, expect a refusal, return its message."""

    def build(**overrides: Any) -> str:
        with pytest.raises(ValidationError) as caught:
            new_envelope(run_started_payload, **envelope_fields(**overrides))
        return str(caught.value)

    return build


def test_naive_datetime_is_refused(refused: Callable[..., str]) -> None:
    assert "timezone" in refused(occurred_at=datetime(2025, 3, 1, 12, 0))


def test_non_utc_offset_is_refused(refused: Callable[..., str]) -> None:
    plus_two = timezone(timedelta(hours=2))
    assert "UTC" in refused(occurred_at=datetime(2025, 3, 1, 12, 0, tzinfo=plus_two))


@pytest.mark.parametrize(
    "project_id", ["", "a", "Acme", "-acme", "acme!", "a" * 65, "acme corp", "_acme"]
)
def test_bad_project_id_is_refused(project_id: str, refused: Callable[..., str]) -> None:
    assert "project_id" in refused(project_id=project_id)


@pytest.mark.parametrize(
    "event_id",
    [
        uuid.uuid4(),
        uuid.uuid1(),
        uuid.UUID("1ec9414c-232a-6b00-b3c8-9e6bdeced846"),
        "not-a-uuid",
    ],
)
def test_event_id_that_is_not_uuid7_is_refused(event_id: Any, refused: Callable[..., str]) -> None:
    assert "event_id" in refused(event_id=event_id)


@pytest.mark.parametrize(
    "trace_id",
    ["0" * 32, "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e473", "x" * 32],
)
def test_bad_trace_id_is_refused(trace_id: str, refused: Callable[..., str]) -> None:
    assert "trace_id" in refused(trace_id=trace_id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream_seq", 0),
        ("stream_seq", True),
        ("stream_seq", 1.0),
        ("stream_type", "Run"),
        ("stream_id", ""),
        ("correlation_id", ""),
        ("actor", ""),
        ("producer", "Run Time"),
        ("causation_id", ""),
    ],
)
def test_other_bad_fields_are_refused(field: str, value: Any, refused: Callable[..., str]) -> None:
    assert field in refused(**{field: value})


def test_extra_field_is_refused(
    run_started: Envelope[RunStarted], refused: Callable[..., str]
) -> None:
    data = run_started.model_dump() | {"tenant": "acme"}
    with pytest.raises(ValidationError, match="extra"):
        type(run_started).model_validate(data)


@pytest.mark.parametrize(
    ("event_type", "match"), [("Run.Started", "pattern"), ("run", "pattern"), ("run.", "pattern")]
)
def test_malformed_event_type_is_refused(
    event_type: str,
    match: str,
    refused: Callable[..., str],
    envelope_fields: Callable[..., dict[str, Any]],
    run_started_payload: RunStarted,
) -> None:
    data = envelope_fields(
        event_id=new_event_id(),
        event_type=event_type,
        schema_version=1,
        payload=run_started_payload,
    )
    with pytest.raises(ValidationError, match=match):
        Envelope[RunStarted].model_validate(data)


def test_event_type_must_match_the_payload_class(
    envelope_fields: Callable[..., dict[str, Any]], run_started_payload: RunStarted
) -> None:
    data = envelope_fields(
        event_id=new_event_id(),
        event_type="run.completed",
        schema_version=1,
        payload=run_started_payload,
    )
    with pytest.raises(ValidationError, match="does not match payload type"):
        Envelope[RunStarted].model_validate(data)


def test_schema_version_must_match_the_payload_class(
    envelope_fields: Callable[..., dict[str, Any]],
) -> None:
    data = envelope_fields(
        event_id=new_event_id(),
        event_type="run.completed",
        schema_version=3,
        payload=RunCompleted(reply="hi", suppressed=False),
    )
    with pytest.raises(ValidationError, match="does not match payload version"):
        Envelope[RunCompleted].model_validate(data)


def test_unregistered_payload_class_cannot_be_enveloped(
    envelope_fields: Callable[..., dict[str, Any]], run_started_payload: RunStarted
) -> None:
    class Loose(RunStarted):
        pass

    loose = Loose.model_validate(run_started_payload.model_dump())
    # A subclass inherits the parent's registration attributes but is not itself registered.
    with pytest.raises(TypeError, match="not a registered payload class"):
        new_envelope(loose, **envelope_fields())


def test_causation_id_is_kept(
    envelope_fields: Callable[..., dict[str, Any]], run_started_payload: RunStarted
) -> None:
    cause = str(new_event_id())
    envelope = new_envelope(run_started_payload, **envelope_fields(causation_id=cause))
    assert envelope.causation_id == cause

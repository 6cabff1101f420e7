"""One concrete envelope class per registered payload class, and the way to build envelopes.

The concrete class pins ``event_type`` and ``schema_version`` to literals, which is what
lets the codec parse a record with one discriminated-union ``validate_json`` call.
Producers build envelopes with :func:`new_envelope`, so what they publish and what the
codec decodes are instances of the same class and compare equal.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from pydantic import create_model

from awooop.contracts.records.envelope import Envelope, EventPayload, new_event_id

P = TypeVar("P", bound=EventPayload)

_CLASSES: dict[type[EventPayload], type[Envelope[Any]]] = {}


def envelope_class(payload_type: type[P]) -> type[Envelope[P]]:
    """Return the concrete envelope class of a registered payload class (cached).

    Raises ``TypeError`` when the payload class was never registered with an event type.
    """
    cached = _CLASSES.get(payload_type)
    if cached is not None:
        return cast("type[Envelope[P]]", cached)
    if "event_type" not in payload_type.__dict__:
        msg = f"{payload_type.__name__} is not a registered payload class"
        raise TypeError(msg)
    event_type_literal: Any = Literal.__getitem__(payload_type.event_type)
    version_literal: Any = Literal.__getitem__(payload_type.schema_version)
    base: Any = Envelope[payload_type]  # type: ignore[valid-type]
    concrete = create_model(
        f"{payload_type.__name__}Envelope",
        __base__=base,
        __module__=payload_type.__module__,
        event_type=(event_type_literal, ...),
        schema_version=(version_literal, ...),
    )
    _CLASSES[payload_type] = cast("type[Envelope[Any]]", concrete)
    return cast("type[Envelope[P]]", concrete)


def new_envelope(
    payload: P,
    *,
    occurred_at: datetime,
    project_id: str,
    stream_type: str,
    stream_id: str,
    stream_seq: int,
    trace_id: str,
    correlation_id: str,
    actor: str,
    producer: str,
    causation_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope[P]:
    """Wrap ``payload`` in its envelope; ``event_type`` and ``schema_version`` come from it.

    A fresh UUIDv7 is minted when ``event_id`` is not given; a relay or replay that
    re-publishes an event passes the original id. Raises ``pydantic.ValidationError`` for
    any invalid field and ``TypeError`` for an unregistered payload class.
    """
    cls = envelope_class(type(payload))
    return cls(
        event_id=new_event_id() if event_id is None else event_id,
        event_type=type(payload).event_type,
        schema_version=type(payload).schema_version,
        occurred_at=occurred_at,
        project_id=project_id,
        stream_type=stream_type,
        stream_id=stream_id,
        stream_seq=stream_seq,
        trace_id=trace_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=actor,
        producer=producer,
        payload=payload,
    )

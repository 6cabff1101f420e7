"""The event envelope: the one shape every event on an event topic has (ARCHITECTURE §3).

An :class:`Envelope` wraps a typed payload (a subclass of :class:`EventPayload`) with
the facts every consumer needs without knowing the payload: identity, ordering,
tenancy, tracing and provenance. Envelopes are immutable and refuse unknown fields.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Generic, Self, TypeVar

import uuid6
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
PROJECT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"
TRACE_ID_PATTERN = r"^[0-9a-f]{32}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

_ZERO_TRACE_ID = "0" * 32

EventType = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=128)]
ProjectId = Annotated[str, Field(pattern=PROJECT_ID_PATTERN)]
SchemaVersion = Annotated[int, Field(strict=True, ge=1)]
Identifier = Annotated[str, Field(min_length=1, max_length=256)]


def new_event_id() -> uuid.UUID:
    """Return a fresh UUIDv7: time-ordered, so ids sort roughly by creation."""
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def new_trace_id() -> str:
    """Return a random W3C trace id: 32 lowercase hex digits, never all zeros."""
    while True:
        trace_id = secrets.token_hex(16)
        if trace_id != _ZERO_TRACE_ID:
            return trace_id


def is_valid_trace_id(value: str) -> bool:
    """Tell whether ``value`` is a W3C trace id (32 lowercase hex, not all zeros)."""
    return re.fullmatch(TRACE_ID_PATTERN, value) is not None and value != _ZERO_TRACE_ID


class EventPayload(BaseModel):
    """Base of every event payload.

    A concrete payload gets its ``event_type`` and ``schema_version`` class attributes from
    ``register_payload``; one payload class is the *current* shape of one event type.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int]


PayloadT = TypeVar("PayloadT", bound=EventPayload)


class Envelope(BaseModel, Generic[PayloadT]):
    """An event: immutable, self-describing, carrying one typed payload.

    Invariants: ``event_id`` is a UUIDv7; ``occurred_at`` is timezone-aware UTC;
    ``trace_id`` is a non-zero W3C trace id; ``event_type`` and ``schema_version`` agree
    with the payload's registered class. Build instances with ``new_envelope`` so that
    producers and the codec use the same concrete class for each event type.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    event_type: EventType
    schema_version: SchemaVersion
    occurred_at: AwareDatetime
    project_id: ProjectId
    stream_type: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    stream_id: Identifier
    stream_seq: Annotated[int, Field(strict=True, ge=1)]
    trace_id: Annotated[str, Field(pattern=TRACE_ID_PATTERN)]
    correlation_id: Identifier
    causation_id: Identifier | None = None
    actor: Identifier
    producer: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    payload: PayloadT

    @field_validator("event_id")
    @classmethod
    def _event_id_is_v7(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:
            msg = f"event_id must be a UUIDv7, got version {value.version}"
            raise ValueError(msg)
        return value

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_is_utc(cls, value: datetime) -> datetime:
        # Timelines sort on occurred_at across hosts: a single zone keeps that comparison
        # honest when the timestamps are read back as text.
        if value.utcoffset() != timedelta(0):
            msg = "occurred_at must be UTC (offset +00:00)"
            raise ValueError(msg)
        return value

    @field_validator("trace_id")
    @classmethod
    def _trace_id_not_zero(cls, value: str) -> str:
        if value == _ZERO_TRACE_ID:
            msg = "trace_id must not be all zeros (W3C invalid trace id)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _matches_payload(self) -> Self:
        payload_type = type(self.payload)
        expected = payload_type.__dict__.get("event_type")
        if expected is not None and expected != self.event_type:
            msg = f"event_type {self.event_type!r} does not match payload type {expected!r}"
            raise ValueError(msg)
        version = payload_type.__dict__.get("schema_version")
        if version is not None and version != self.schema_version:
            msg = f"schema_version {self.schema_version} does not match payload version {version}"
            raise ValueError(msg)
        return self

"""Turning a new envelope into the event-store row that the relay will publish."""

from __future__ import annotations

from typing import Any

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topic
from awooop.infra.postgres.event_store import NewEvent

_CODEC = EnvelopeCodec()


def to_new_event(envelope: Envelope[Any], topic: Topic, key: str) -> NewEvent:
    """The stored form of `envelope`: bytes encoded once, headers every record carries.

    `key` is the topic's ordering key (`run_id`, `project_id:platform_subject_id`, …);
    a fresh span id is minted under the envelope's trace id.
    """
    return NewEvent(
        event_id=envelope.event_id,
        stream_type=envelope.stream_type,
        stream_id=envelope.stream_id,
        stream_seq=envelope.stream_seq,
        topic=topic.name,
        key=key.encode(),
        headers=record_headers(envelope, make_traceparent(envelope.trace_id)),
        data=_CODEC.encode(envelope),
    )

"""Run-stream envelopes as event-store rows, keyed by run for `awooop.run.events.v1`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import NewEvent
from awooop.runtime.domain.recording import OUTBOUND_STREAM


def stored(envelopes: Sequence[Envelope[Any]]) -> list[NewEvent]:
    """The rows to append for `envelopes`, in order: a run's own events on the run topic
    (keyed by the run id, their stream id), its chat messages on the outbound topic
    (keyed by `project_id:chat_id`)."""
    return [_row(env) for env in envelopes]


def _row(env: Envelope[Any]) -> NewEvent:
    if env.stream_type == OUTBOUND_STREAM:
        key = f"{env.project_id}:{env.payload.chat_id}"
        return to_new_event(env, Topics.CHANNEL_OUTBOUND, key)
    return to_new_event(env, Topics.RUN_EVENTS, env.stream_id)


_CODEC = EnvelopeCodec()


def decode(data: bytes) -> Envelope[Any]:
    """A stored run-stream event as its current envelope (older versions upcast)."""
    return _CODEC.decode(data)

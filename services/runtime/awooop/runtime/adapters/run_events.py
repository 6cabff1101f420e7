"""Run-stream envelopes as event-store rows, keyed by run for `awooop.run.events.v1`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import NewEvent


def stored(envelopes: Sequence[Envelope[Any]]) -> list[NewEvent]:
    """The rows to append for `envelopes`, in order (the run id, the stream id, is the key)."""
    return [to_new_event(env, Topics.RUN_EVENTS, env.stream_id) for env in envelopes]


_CODEC = EnvelopeCodec()


def decode(data: bytes) -> Envelope[Any]:
    """A stored run-stream event as its current envelope (older versions upcast)."""
    return _CODEC.decode(data)

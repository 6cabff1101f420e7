"""One inbound record, normalised from whichever channel it came through.

Every record ingress accepts becomes one :class:`InboundEvent`: a message that may start
a run, a button press, or a record that must start nothing (ignored, with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass

from awooop.contracts.events.payloads.ingress import ButtonPressed, InboundIgnored, MessageReceived
from awooop.contracts.records.headers import trace_id_of
from awooop.contracts.records.inbound import InboundRecord
from awooop.contracts.registries.errors import E_INBOUND_INVALID

InboundPayload = MessageReceived | ButtonPressed | InboundIgnored


class InboundRefused(ValueError):
    """The inbound record is well-formed but cannot become an event; ``reason`` says why
    and ``code`` is the DLQ's error code."""

    code: str = E_INBOUND_INVALID.code

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A validated record ready to be enveloped.

    ``payload`` is already the event's body; ``trace_id`` is the trace the bridge
    started (``None`` when it sent none, or an invalid one).
    """

    project_id: str
    payload: InboundPayload
    trace_id: str | None

    @property
    def dedup_key(self) -> tuple[str, str, str]:
        """What makes two records the same event: project, channel, provider event id."""
        return (self.project_id, self.payload.channel_type, self.payload.provider_event_id)

    @property
    def stream_id(self) -> str:
        """The id of the inbound stream: ``<project>:<channel>:<provider_event_id>``."""
        return ":".join(self.dedup_key)

    @property
    def starts_run(self) -> bool:
        """Only a message starts a run (or meets the double-texting rule of one)."""
        return isinstance(self.payload, MessageReceived)


InboundMessage = InboundEvent
"""The name the walking skeleton used, when every accepted record was a message."""


def trace_of(record: InboundRecord) -> str | None:
    """The trace id in the record's ``traceparent``; ``None`` when absent or invalid.

    An invalid ``traceparent`` (the all-zero trace id) starts a new trace, as W3C asks,
    rather than refusing a message a person wrote.
    """
    if record.traceparent is None:
        return None
    try:
        return trace_id_of(record.traceparent)
    except ValueError:
        return None

"""Ingress decisions without I/O: inbound records in, normalised messages and events out."""

from awooop.ingress.domain.bindings import Binding, Bindings, InboundUnbound, Unbound
from awooop.ingress.domain.events import message_received, subject_key
from awooop.ingress.domain.messages import (
    InboundEvent,
    InboundMessage,
    InboundPayload,
    InboundRefused,
    trace_of,
)
from awooop.ingress.domain.normalise import normalise
from awooop.ingress.domain.slack import normalise_slack
from awooop.ingress.domain.telegram import check_provider_event_id, normalise_telegram

__all__ = [
    "Binding",
    "Bindings",
    "InboundEvent",
    "InboundMessage",
    "InboundPayload",
    "InboundRefused",
    "InboundUnbound",
    "Unbound",
    "check_provider_event_id",
    "message_received",
    "normalise",
    "normalise_slack",
    "normalise_telegram",
    "subject_key",
    "trace_of",
]

"""Ingress decisions without I/O: inbound records in, normalised messages and events out."""

from awooop.ingress.domain.bindings import Binding, Bindings, InboundUnbound, Unbound
from awooop.ingress.domain.events import message_received, subject_key
from awooop.ingress.domain.messages import InboundMessage, InboundRefused, trace_of
from awooop.ingress.domain.normalise import normalise

__all__ = [
    "Binding",
    "Bindings",
    "InboundMessage",
    "InboundRefused",
    "InboundUnbound",
    "Unbound",
    "message_received",
    "normalise",
    "subject_key",
    "trace_of",
]

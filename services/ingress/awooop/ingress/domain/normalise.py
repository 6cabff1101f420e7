"""Dispatch an inbound record to its channel's normaliser."""

from __future__ import annotations

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain.bindings import Bindings
from awooop.ingress.domain.messages import InboundMessage, InboundRefused
from awooop.ingress.domain.telegram import normalise_telegram


def normalise(record: InboundRecord, bindings: Bindings) -> InboundMessage:
    """Turn an inbound record into a message of the agent its chat is bound to;
    :class:`InboundRefused` when it cannot be one (``InboundUnbound`` when unbound)."""
    if record.channel_type == "telegram":
        return normalise_telegram(record, bindings)
    raise InboundRefused(f"channel_type {record.channel_type!r}: slack not supported yet")

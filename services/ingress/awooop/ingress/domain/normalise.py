"""Dispatch an inbound record to its channel's normaliser."""

from __future__ import annotations

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain.messages import InboundMessage, InboundRefused
from awooop.ingress.domain.telegram import normalise_telegram


def normalise(record: InboundRecord) -> InboundMessage:
    """Turn an inbound record into a message; :class:`InboundRefused` when it cannot be one."""
    if record.channel_type == "telegram":
        return normalise_telegram(record)
    raise InboundRefused(f"channel_type {record.channel_type!r}: slack not supported yet")

"""Dispatch an inbound record to its channel's normaliser."""

from __future__ import annotations

from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain.bindings import Bindings
from awooop.ingress.domain.messages import InboundEvent, InboundRefused
from awooop.ingress.domain.slack import normalise_slack
from awooop.ingress.domain.telegram import normalise_telegram

MAX_STREAM_ID = 256
"""The envelope's ``stream_id`` limit, which ``<project>:<channel>:<provider_event_id>``
must fit."""


def normalise(record: InboundRecord, bindings: Bindings) -> InboundEvent:
    """The one event an inbound record becomes: a message for the agent its chat is
    bound to, a button press, or the record ignored with its reason.

    Raises :class:`InboundRefused` when it can be none of these (a provider id that
    does not describe the payload, a missing or ill-typed id, a payload that fails
    validation), and its subclass ``InboundUnbound`` when no binding of the record's
    project covers the chat.
    """
    stream_id = ":".join((record.project_id, record.channel_type, record.provider_event_id))
    if len(stream_id) > MAX_STREAM_ID:
        raise InboundRefused(
            f"provider_event_id of {len(record.provider_event_id)} characters is too long "
            f"for a {MAX_STREAM_ID}-character stream id"
        )
    if record.channel_type == "telegram":
        return normalise_telegram(record, bindings)
    if record.channel_type == "slack":
        return normalise_slack(record, bindings)
    raise InboundRefused(f"channel_type {record.channel_type!r} is no channel ingress reads")

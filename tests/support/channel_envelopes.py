"""Envelopes of one project's channel traffic, as ingress, the runtime and the bridges
emit them, for the projector's tests: every kind of inbound record, the runtime's word
on messages, outbound messages and their delivery reports; and the topic and key each
one is produced to."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.events.payloads.channel import Button, DeliveryReported, OutboundRequested
from awooop.contracts.events.payloads.ingress import (
    ButtonPressed,
    DuplicateReceived,
    InboundIgnored,
    InboundRejected,
    MessageReceived,
)
from awooop.contracts.events.payloads.run import MessageQueued, MessageRejected, RunStarted
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.security.redaction import redact_text

REVISION = "demo-agent@1:0123456789ab"
Event = Envelope[Any]


@dataclass
class ChannelTraffic:
    """One project's channel events, in the order they are made (`events`); time moves
    one second per event."""

    project: str
    at: dt.datetime
    channel: str = "telegram"
    events: list[Event] = field(default_factory=list)
    _updates: int = 0

    def _add(self, payload: Any, stream: tuple[str, str, int], **kw: Any) -> Event:
        event_id = kw.pop("event_id", None) or new_event_id()
        envelope = new_envelope(
            payload,
            occurred_at=self.at + dt.timedelta(seconds=len(self.events)),
            project_id=self.project,
            stream_type=stream[0],
            stream_id=stream[1],
            stream_seq=stream[2],
            trace_id=new_trace_id(),
            correlation_id=kw.pop("correlation_id", None) or str(event_id),
            actor=kw.pop("actor", "service:ingress"),
            producer=kw.pop("producer", "ingress"),
            event_id=event_id,
        )
        self.events.append(envelope)
        return envelope

    def _provider_id(self) -> str:
        self._updates += 1
        return f"7:{self._updates}"

    def subject(self, user: str = "42") -> str:
        return f"{self.project}:{self.channel}:{user}"

    def message(
        self, text: str, *, user: str = "42", thread: str | None = None, provider: str = ""
    ) -> Event:
        provider = provider or self._provider_id()
        payload = MessageReceived(
            channel_type=self.channel,  # type: ignore[arg-type]
            provider_event_id=provider,
            platform_subject_id=self.subject(user),
            chat_id=user,
            thread_id=thread,
            message_id=str(100 + self._updates),
            text=text,
            display_text=redact_text(text),
            attachments=(),
            entities=(),
            command=None,
            edited=False,
            received_at=self.at,
            agent_id="demo-agent",
            revisions=(),
        )
        return self._add(payload, ("inbound", f"{self.project}:{self.channel}:{provider}", 1))

    def _run_event(self, payload: Any, run: Event, seq: int) -> Event:
        run_id = str(run.event_id)
        return self._add(
            payload,
            ("run", run_id, seq),
            correlation_id=run_id,
            actor="service:runtime",
            producer="runtime",
        )

    def started(self, message: Event) -> Event:
        p = message.payload
        payload = RunStarted(
            agent_id="demo",
            channel_type=p.channel_type,
            chat_id=p.chat_id,
            thread_id=p.thread_id,
            reply_to=p.message_id,
            platform_subject_id=p.platform_subject_id,
            trigger_event_id=message.event_id,
            mode="active",
            revisions=(REVISION,),
            agent_revision=REVISION,
        )
        return self._run_event(payload, message, 1)

    def queued(self, message: Event, on: Event, seq: int = 5) -> Event:
        payload = MessageQueued(
            message_event_id=message.event_id,
            platform_subject_id=message.payload.platform_subject_id,
        )
        return self._run_event(payload, on, seq)

    def busy(self, message: Event, by: Event, seq: int = 6) -> Event:
        payload = MessageRejected(
            message_event_id=message.event_id,
            platform_subject_id=message.payload.platform_subject_id,
            code="E-RUN-BUSY",
        )
        return self._run_event(payload, by, seq)

    def button(self, value: str, user: str = "42") -> Event:
        provider = self._provider_id()
        payload = ButtonPressed(
            channel_type=self.channel,  # type: ignore[arg-type]
            provider_event_id=provider,
            platform_subject_id=self.subject(user),
            chat_id=user,
            thread_id=None,
            message_id="900",
            value=value,
            callback_id="cb-1",
            received_at=self.at,
            agent_id="demo-agent",
            revisions=(),
        )
        return self._add(payload, ("inbound", f"{self.project}:{self.channel}:{provider}", 1))

    def ignored(self, reason: str, text: str = "") -> Event:
        provider = self._provider_id()
        payload = InboundIgnored(
            channel_type=self.channel,  # type: ignore[arg-type]
            provider_event_id=provider,
            platform_subject_id=None,
            chat_id="42",
            reason=reason,
            display_text=redact_text(text),
            received_at=self.at,
        )
        return self._add(payload, ("inbound", f"{self.project}:{self.channel}:{provider}", 1))

    def duplicate(self, of: Event, offset: int) -> Event:
        payload = DuplicateReceived(
            channel_type=of.payload.channel_type,
            provider_event_id=of.payload.provider_event_id,
            duplicate_of=of.event_id,
            partition=2,
            offset=offset,
            received_at=self.at,
        )
        return self._add(payload, ("inbound_record", f"record:2:{offset}:0", 1))

    def rejected(self, code: str, reason: str, offset: int, key: str | None = None) -> Event:
        payload = InboundRejected(
            code=code,
            reason=reason,
            record_key=key,
            partition=1,
            offset=offset,
            channel_type=self.channel,
            provider_event_id=f"bad:{offset}",
        )
        return self._add(payload, ("inbound_record", f"record:1:{offset}:0", 1))

    def outbound(
        self, run: Event, text: str, *, kind: str = "final", buttons: tuple[str, ...] = ()
    ) -> Event:
        run_id = str(run.event_id)
        payload = OutboundRequested(
            run_id=run.event_id,
            kind=kind,  # type: ignore[arg-type]
            channel_type=run.payload.channel_type,
            chat_id=run.payload.chat_id,
            thread_id=run.payload.thread_id,
            reply_to=run.payload.message_id,
            text=text,
            buttons=tuple(Button(label=b, value=f"v:{b}"[:64]) for b in buttons),
            edit_of=None,
            deliver_before=self.at + dt.timedelta(minutes=10),
        )
        stream = ("outbound", f"outbound:{run_id}:{len(self.events)}", 1)
        return self._add(
            payload, stream, correlation_id=run_id, actor="service:runtime", producer="runtime"
        )

    def delivery(self, outbound: Event, status: str, **kw: Any) -> Event:
        p = outbound.payload
        payload = DeliveryReported(
            outbound_event_id=outbound.event_id,
            run_id=p.run_id,
            kind=p.kind,
            channel_type=p.channel_type,
            chat_id=p.chat_id,
            status=status,  # type: ignore[arg-type]
            provider_message_ids=kw.get("ids", ("555",) if status == "sent" else ()),
            attempts=kw.get("attempts", 1),
            code=kw.get("code"),
            reason=kw.get("reason"),
        )
        stream = ("delivery", f"delivery:{outbound.event_id}", 1)
        return self._add(
            payload,
            stream,
            correlation_id=str(p.run_id),
            actor="service:bridges",
            producer="bridges",
            event_id=kw.get("event_id"),
        )


def run_of(message: Event) -> uuid.UUID:
    """A run's id is the id of the message that started it."""
    return message.event_id

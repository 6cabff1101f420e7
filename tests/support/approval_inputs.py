"""What the approval service reads, as the services upstream produce it: a run waiting
for an approval and a run's end (runtime), a held call (gateway) and a button press
(ingress); and a producer that sends each to its topic with the key that topic orders
by."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiokafka import AIOKafkaProducer

from awooop.contracts.events.payloads.gateway import ApprovalRequired
from awooop.contracts.events.payloads.ingress import ButtonPressed
from awooop.contracts.events.payloads.run import ApprovalAwaited, RunCancelled
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.security.action_hash import action_hash
from support.infra import unique

CODEC = EnvelopeCodec()
TOOL = "restart_service__demo"
ARGUMENTS = {"service": "checkout"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_started(
    project: str, run_id: str, user: str, agent_ref: str, *, call_id: str = "call"
) -> Envelope[Any]:
    """The runtime's `run.approval_awaited` of `run_id` (what the approval service reads of
    a run): telegram user `user` asked, the run is pinned to `agent_ref`."""
    return new_envelope(
        ApprovalAwaited(
            call_id=call_id,
            action_hash="c" * 64,
            requester=f"{project}:telegram:{user}",
            agent_revision=agent_ref,
        ),
        occurred_at=_now(),
        project_id=project,
        stream_type="run",
        stream_id=run_id,
        stream_seq=4,
        trace_id=new_trace_id(),
        correlation_id=run_id,
        actor="service:runtime",
        producer="runtime",
    )


def run_cancelled(project: str, run_id: str, seq: int = 9) -> Envelope[Any]:
    return new_envelope(
        RunCancelled(code="E-RUN-CANCELLED", reason="stopped by an operator", actor="user:op"),
        occurred_at=_now(),
        project_id=project,
        stream_type="run",
        stream_id=run_id,
        stream_seq=seq,
        trace_id=new_trace_id(),
        correlation_id=run_id,
        actor="service:runtime",
        producer="runtime",
    )


def held_call(
    project: str, run_id: str, call_id: str, policy_ref: str, *, tool_ref: str = "tool@1:x"
) -> Envelope[Any]:
    """The gateway's `gateway.approval_required` for a write call of `run_id`."""
    hashed = action_hash(
        project_id=project,
        run_id=run_id,
        call_id=call_id,
        tool=TOOL,
        arguments=ARGUMENTS,
        policy_revision=policy_ref,
    )
    return new_envelope(
        ApprovalRequired(
            call_id=call_id,
            tool=TOOL,
            argument_hash="a" * 64,
            arguments=dict(ARGUMENTS),
            action_hash=hashed,
            revisions=(tool_ref, policy_ref),
            scope="write",
            mode="suggest",
            reason="write tools need approval in suggest mode",
        ),
        occurred_at=_now(),
        project_id=project,
        stream_type="tool_call",
        stream_id=call_id,
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id=run_id,
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def button(project: str, user: str, value: str) -> Envelope[Any]:
    """Ingress's `ingress.button_pressed` of telegram user `user` with data `value`."""
    provider = f"7:{unique('')}"
    pressed = new_envelope(
        ButtonPressed(
            channel_type="telegram",
            provider_event_id=provider,
            platform_subject_id=f"{project}:telegram:{user}",
            chat_id=user,
            thread_id=None,
            message_id="900",
            value=value,
            callback_id="cb-1",
            received_at=_now(),
            agent_id="demo-agent",
            revisions=(),
        ),
        occurred_at=_now(),
        project_id=project,
        stream_type="inbound",
        stream_id=f"{project}:telegram:{provider}",
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id="pending",
        actor="service:ingress",
        producer="ingress",
    )
    return pressed.model_copy(update={"correlation_id": str(pressed.event_id)})


def _destination(envelope: Envelope[Any]) -> tuple[str, str]:
    if envelope.event_type == "ingress.button_pressed":
        subject = envelope.payload.platform_subject_id
        return Topics.INGRESS_EVENTS.name, f"{envelope.project_id}:{subject}"
    if envelope.producer == "mcp_gateway":
        return Topics.GATEWAY_EVENTS.name, envelope.correlation_id
    return Topics.RUN_EVENTS.name, envelope.correlation_id


async def send(producer: AIOKafkaProducer, *envelopes: Envelope[Any]) -> None:
    """Each envelope to the topic its producer writes, keyed as that topic is."""
    for envelope in envelopes:
        topic, key = _destination(envelope)
        await producer.send_and_wait(
            topic,
            CODEC.encode(envelope),
            key=key.encode(),
            headers=record_headers(envelope, make_traceparent(envelope.trace_id)),
        )

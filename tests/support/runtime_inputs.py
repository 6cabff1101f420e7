"""Runtime inputs as the services upstream produce them: an ingress message, a gateway
result, and a producer that sends one envelope to its topic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from awooop.contracts.events.payloads.gateway import ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.infra.kafka.producer import create_producer
from support.infra import StackUrls, unique


def message(
    project: str, user: str, text: str, *, chat: str | None = None, agent: str = "demo-agent"
) -> Envelope[Any]:
    event_id_source = new_envelope(
        MessageReceived(
            channel_type="telegram",
            provider_event_id=f"7:{unique('')}",
            platform_subject_id=f"{project}:telegram:{user}",
            chat_id=chat or user,
            text=text,
            display_text=text,
            received_at=dt.datetime.now(dt.UTC),
            agent_id=agent,
            revisions=(),
        ),
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=project,
        stream_type="inbound",
        stream_id=f"{project}:telegram:{unique('u')}",
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id="pending",
        actor="service:ingress",
        producer="ingress",
    )
    return event_id_source.model_copy(update={"correlation_id": str(event_id_source.event_id)})


def tool_result(request: Envelope[Any]) -> Envelope[Any]:
    """The gateway's success for `request`: the demo service is healthy."""
    succeeded = ToolCallSucceeded(
        call_id=request.payload.call_id,
        result={"service": "checkout", "status": "healthy"},
        revisions=(request.payload.revisions[0],),
    )
    return gateway_answer(request, succeeded)


def gateway_answer(request: Envelope[Any], payload: Any) -> Envelope[Any]:
    """A gateway event answering the run's tool call `request`."""
    return new_envelope(
        payload,
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=request.project_id,
        stream_type="tool_call",
        stream_id=request.payload.call_id,
        stream_seq=1,
        trace_id=request.trace_id,
        correlation_id=request.correlation_id,
        causation_id=str(request.event_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


async def send(urls: StackUrls, topic: str, key: str, env: Envelope[Any]) -> None:
    producer = create_producer(urls.settings().kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            EnvelopeCodec().encode(env),
            key=key.encode(),
            headers=record_headers(env, make_traceparent(env.trace_id)),
        )
    finally:
        await producer.stop()

"""Envelopes of one complete run, as ingress, the runtime and the gateway emit them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from awooop.contracts.events.payloads.gateway import ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import (
    RunCompleted,
    RunStarted,
    ToolCallRequested,
    ToolResultAccepted,
)
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REVISION = "demo-agent@1:0123456789ab"
MESSAGE = "is the database healthy? my password is hunter2"

RunEvents = Callable[..., list[Envelope[Any]]]


def build_run(project: str = "acme", at: datetime = BASE) -> list[Envelope[Any]]:
    """ingress.message_received, run.started, run.tool_call_requested,
    gateway.tool_call_succeeded, run.tool_result_accepted, run.completed."""
    ingress_id, trace = new_event_id(), new_trace_id()
    run_id = str(ingress_id)
    subject = f"{project}:telegram:42"
    call_id = f"{run_id}:1"

    def event(payload: Any, seconds: int, stream: tuple[str, str, int], who: str, **kw: Any) -> Any:
        stream_type, stream_id, seq = stream
        return new_envelope(
            payload,
            occurred_at=at + timedelta(seconds=seconds),
            project_id=project,
            stream_type=stream_type,
            stream_id=stream_id,
            stream_seq=seq,
            trace_id=trace,
            correlation_id=run_id,
            actor=f"service:{who}",
            producer=who,
            **kw,
        )

    return [
        event(
            MessageReceived(
                channel_type="telegram",
                provider_event_id="7:100",
                platform_subject_id=subject,
                chat_id="42",
                text=MESSAGE,
                display_text=MESSAGE,
                received_at=at,
                agent_id="demo-agent",
                revisions=(),
            ),
            0,
            ("inbound", f"{project}:telegram:7:100", 1),
            "ingress",
            event_id=ingress_id,
        ),
        event(
            RunStarted(
                agent_id="demo",
                channel_type="telegram",
                chat_id="42",
                platform_subject_id=subject,
                trigger_event_id=ingress_id,
                mode="shadow",
                revisions=(REVISION,),
                agent_revision=REVISION,
            ),
            1,
            ("run", run_id, 1),
            "runtime",
        ),
        event(
            ToolCallRequested(
                call_id=call_id,
                tool="status__demo",
                arguments={"host": "db-secret-host"},
                execute_before=at + timedelta(minutes=1),
                revisions=(REVISION,),
            ),
            2,
            ("run", run_id, 2),
            "runtime",
        ),
        event(
            ToolCallSucceeded(call_id=call_id, result={"status": "green"}, revisions=(REVISION,)),
            3,
            ("tool_call", call_id, 1),
            "mcp_gateway",
        ),
        event(
            ToolResultAccepted(call_id=call_id, outcome="succeeded", result={"status": "green"}),
            4,
            ("run", run_id, 3),
            "runtime",
        ),
        event(RunCompleted(reply="all green", suppressed=True), 5, ("run", run_id, 4), "runtime"),
    ]

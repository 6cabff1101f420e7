"""Envelopes of a run whose LLM steps report their usage, of its outbound messages and of
a project's budget stream, as the runtime emits them, for the projector's tests; and the
topic and key each one is produced to."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.events.payloads.budget import ScopeTripped, TenantKilled, TenantReset
from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import (
    RunCompleted,
    RunStarted,
    StepReport,
    ToolCallRequested,
    ToolResultAccepted,
)
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope

REVISION = "demo-agent@1:0123456789ab"
BUDGET_REVISION = "budget@1:0123456789ab"
REPLY = "The database is healthy: 3 replicas in sync."


def step(number: int, tokens_in: int, tokens_out: int, cost: str) -> StepReport:
    return StepReport(
        number=number,
        model="gpt-4o-mini",
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost,
        latency_ms=40 + number,
        schema_retries=number % 2,
        reserved_tokens=tokens_in + 1024,
    )


def stepped_run(
    project: str, at: dt.datetime, agent: str = "demo", steps: tuple[StepReport, ...] = ()
) -> list[Envelope[Any]]:
    """message, run.started, run.tool_call_requested (first step), its acceptance,
    run.completed (second step), then the `final` outbound message with the reply."""
    first, second = steps or (step(0, 300, 40, "0.000069"), step(1, 420, 60, "0.0000990"))
    ingress_id, trace = new_event_id(), new_trace_id()
    run_id = str(ingress_id)

    def event(payload: Any, seconds: int, stream: tuple[str, str, int], **kw: Any) -> Any:
        return new_envelope(
            payload,
            occurred_at=at + dt.timedelta(seconds=seconds),
            project_id=project,
            stream_type=stream[0],
            stream_id=stream[1],
            stream_seq=stream[2],
            trace_id=trace,
            correlation_id=run_id,
            actor="service:runtime",
            producer="runtime",
            **kw,
        )

    subject, call_id = f"{project}:telegram:42", f"{run_id}:1"
    message = MessageReceived(
        channel_type="telegram",
        provider_event_id=f"7:{ingress_id.int % 10**9}",
        platform_subject_id=subject,
        chat_id="42",
        text="is the database healthy?",
        display_text="is the database healthy?",
        received_at=at,
        agent_id=agent,
        revisions=(),
    )
    started = RunStarted(
        agent_id=agent,
        channel_type="telegram",
        chat_id="42",
        platform_subject_id=subject,
        trigger_event_id=ingress_id,
        mode="active",
        revisions=(REVISION,),
        agent_revision=REVISION,
    )
    requested = ToolCallRequested(
        call_id=call_id,
        tool="status__demo",
        arguments={"host": "db-1"},
        execute_before=at + dt.timedelta(minutes=1),
        revisions=(REVISION,),
        step=first,
    )
    accepted = ToolResultAccepted(call_id=call_id, outcome="succeeded", result={"ok": True})
    said = OutboundRequested(
        run_id=ingress_id,
        kind="final",
        channel_type="telegram",
        chat_id="42",
        text=REPLY,
        deliver_before=at + dt.timedelta(minutes=10),
    )
    return [
        event(message, 0, ("inbound", f"{project}:telegram:7", 1), event_id=ingress_id),
        event(started, 1, ("run", run_id, 1)),
        event(requested, 2, ("run", run_id, 2)),
        event(accepted, 3, ("run", run_id, 3)),
        event(RunCompleted(reply=REPLY, suppressed=False, step=second), 4, ("run", run_id, 4)),
        event(said, 4, ("outbound", f"outbound:{run_id}:4", 1)),
    ]


@dataclass
class BudgetStream:
    """The events of one project's budget stream (`budget:<project>`), numbered from 1."""

    project: str
    at: dt.datetime
    events: list[Envelope[Any]] = field(default_factory=list)

    def _add(self, payload: Any, actor: str = "service:runtime") -> Envelope[Any]:
        envelope = new_envelope(
            payload,
            occurred_at=self.at + dt.timedelta(minutes=len(self.events)),
            project_id=self.project,
            stream_type="budget",
            stream_id=f"budget:{self.project}",
            stream_seq=len(self.events) + 1,
            trace_id=new_trace_id(),
            correlation_id=self.project,
            actor=actor,
            producer="runtime",
        )
        self.events.append(envelope)
        return envelope

    def kill(self, reason: str = "the tenant spent 95% of its monthly budget") -> Envelope[Any]:
        payload = TenantKilled(
            code="E-BUDGET-KILLED", reason=reason, budget_revision=BUDGET_REVISION
        )
        return self._add(payload)

    def reset(self, actor: str = "operator:alice") -> Envelope[Any]:
        return self._add(TenantReset(actor=actor, reason="raised the limit"), actor=actor)

    def trip(self, period: str, period_key: str, agent: str = "demo") -> Envelope[Any]:
        key = f"{self.project}|agent|{agent}|{period}|{period_key}"
        payload = ScopeTripped(
            scope_key=key,
            scope="agent",
            period=period,  # type: ignore[arg-type]
            period_key=period_key,
            budget_revision=BUDGET_REVISION,
        )
        return self._add(payload)

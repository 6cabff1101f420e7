"""Envelopes of one run's tool calls, as the runtime and the MCP gateway emit them, for
the projector's tests: the run's start, each call's request, and the gateway's word on
it (an approval it needs, then one outcome). Gateway events carry the arguments as the
gateway shows them: redacted, with their hash and the count of values replaced."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.events.payloads.gateway import (
    ApprovalRequired,
    ToolCallBlocked,
    ToolCallFailed,
    ToolCallSucceeded,
)
from awooop.contracts.events.payloads.run import RunStarted, ToolCallRequested
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.security.canonical_json import canonical_sha256
from awooop.security.redaction import redact_value

AGENT_REVISION = "demo-agent@1:0123456789ab"
TOOL_REVISION = "status__demo@1:0123456789ab"
POLICY_REVISION = "demo-policy@2:0123456789ab"
Event = Envelope[Any]
_MARKER = re.compile(r"\[REDACTED:([a-z_]+)\]")


def display_facts(arguments: dict[str, Any]) -> dict[str, Any]:
    """What every gateway event of a call says about its arguments."""
    shown = redact_value(arguments)
    assert isinstance(shown, dict)
    kinds = Counter(_MARKER.findall(repr(shown)))
    return {
        "argument_hash": canonical_sha256(arguments),
        "arguments": shown,
        "redactions": dict(kinds),
    }


@dataclass
class McpCallTraffic:
    """One run's tool-call events, in the order they are made (`events`); time moves one
    second per event."""

    project: str
    at: dt.datetime
    run_id: uuid.UUID = field(default_factory=new_event_id)
    events: list[Event] = field(default_factory=list)
    _run_seq: int = 0
    _call_seqs: Counter[str] = field(default_factory=Counter)

    def _add(self, payload: Any, stream: tuple[str, str, int], producer: str) -> Event:
        envelope = new_envelope(
            payload,
            occurred_at=self.at + dt.timedelta(seconds=len(self.events)),
            project_id=self.project,
            stream_type=stream[0],
            stream_id=stream[1],
            stream_seq=stream[2],
            trace_id=new_trace_id(),
            correlation_id=str(self.run_id),
            actor=f"service:{producer}",
            producer=producer,
        )
        self.events.append(envelope)
        return envelope

    def _run_event(self, payload: Any) -> Event:
        self._run_seq += 1
        return self._add(payload, ("run", str(self.run_id), self._run_seq), "runtime")

    def _gateway_event(self, payload: Any) -> Event:
        self._call_seqs[payload.call_id] += 1
        seq = self._call_seqs[payload.call_id]
        return self._add(payload, ("tool_call", payload.call_id, seq), "mcp_gateway")

    def started(self) -> Event:
        return self._run_event(
            RunStarted(
                agent_id="demo-agent",
                channel_type="telegram",
                chat_id="42",
                platform_subject_id=f"{self.project}:telegram:42",
                trigger_event_id=self.run_id,
                mode="suggest",
                revisions=(AGENT_REVISION, POLICY_REVISION),
                agent_revision=AGENT_REVISION,
            )
        )

    def requested(self, tool: str, arguments: dict[str, Any]) -> Event:
        call_id = f"{self.run_id}:{self._run_seq + 1}"
        return self._run_event(
            ToolCallRequested(
                call_id=call_id,
                tool=tool,
                arguments=arguments,
                execute_before=self.at + dt.timedelta(minutes=5),
                revisions=(AGENT_REVISION,),
            )
        )

    @staticmethod
    def _facts(call: Event) -> dict[str, Any]:
        p = call.payload
        return {"call_id": p.call_id, "tool": p.tool, **display_facts(p.arguments)}

    def approval_required(
        self,
        call: Event,
        *,
        scope: str | None = "write",
        mode: str | None = "suggest",
        reason: str = "",
    ) -> Event:
        p = call.payload
        action = {"project_id": self.project, "call_id": p.call_id, "tool": p.tool}
        bound = canonical_sha256({**action, "policy_revision": POLICY_REVISION})
        return self._gateway_event(
            ApprovalRequired(
                **self._facts(call),
                action_hash=bound,
                revisions=(TOOL_REVISION, POLICY_REVISION),
                scope=scope,
                mode=mode,
                reason=reason,
            )
        )

    def succeeded(
        self,
        call: Event,
        *,
        result: dict[str, Any] | str,
        latency_ms: float = 12.5,
        **facts: Any,
    ) -> Event:
        return self._gateway_event(
            ToolCallSucceeded(
                **(self._facts(call) | facts),
                result=result,
                revisions=(TOOL_REVISION,),
                latency_ms=latency_ms,
            )
        )

    def blocked(
        self,
        call: Event,
        *,
        gate: int,
        code: str,
        reason: str,
        retry_after: float | None = None,
        would_need: str | None = None,
    ) -> Event:
        return self._gateway_event(
            ToolCallBlocked(
                **self._facts(call),
                gate=gate,
                code=code,
                reason=reason,
                revisions=(TOOL_REVISION,),
                retry_after=retry_after,
                would_need=would_need,
            )
        )

    def failed(
        self,
        call: Event,
        *,
        code: str,
        reason: str,
        transient: bool | None,
        latency_ms: float | None = None,
    ) -> Event:
        return self._gateway_event(
            ToolCallFailed(
                **self._facts(call),
                code=code,
                reason=reason,
                transient=transient,
                revisions=(TOOL_REVISION,),
                latency_ms=latency_ms,
            )
        )


EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
"""Secrets the traffic's arguments and reasons carry; no read-model row may show them."""
INVALID = "arguments invalid: /service: 3 is not of type 'string'"


def every_status(t: McpCallTraffic) -> dict[str, Any]:
    """A run's calls in every status, by name: succeeded (one after an approval), refused
    at gates 3 and 4, failed, waiting for an approval, and only asked for."""
    n: dict[str, Any] = {"started": t.started()}
    n["ok"] = t.requested("status__demo", {"service": "checkout", "notify": EMAIL})
    n["ok_done"] = t.succeeded(n["ok"], result={"status": "green"}, latency_ms=42.0)
    n["held"] = t.requested("restart__demo", {"service": "cache", "card": CARD})
    n["held_asked"] = t.approval_required(n["held"], reason="restarts need an approval")
    n["held_done"] = t.succeeded(n["held"], result={"restarted": True}, latency_ms=1800.0)
    n["bad"] = t.requested("status__demo", {"service": 3})
    n["bad_refused"] = t.blocked(n["bad"], gate=3, code="E-MCP-GATE-004", reason=INVALID)
    n["busy"] = t.requested("status__demo", {"service": "db"})
    n["busy_refused"] = t.blocked(
        n["busy"], gate=4, code="E-MCP-GATE-007", reason="rate limited", retry_after=1.5
    )
    n["down"] = t.requested("status__demo", {"service": "queue"})
    n["down_failed"] = t.failed(
        n["down"],
        code="E-MCP-CALL-FAILED",
        reason=f"ConnectionRefusedError: mail {EMAIL}",
        transient=True,
        latency_ms=3.0,
    )
    n["waiting"] = t.requested("restart__demo", {"service": "web"})
    n["waiting_asked"] = t.approval_required(n["waiting"], scope="admin", mode="active")
    n["asked"] = t.requested("status__demo", {"service": "dns"})
    return n

"""Envelopes of one run's approvals, as the runtime, the MCP gateway and the approval
service emit them, for the projector's tests: a held call's request, its votes (counted
and refused), the grant with its token or the denial, the runtime's
`run.tool_call_approved` or denied result, and the gateway's retried attempts of the
approved call. Built on `McpCallTraffic`, so each stream's sequence numbers are the
platform's: the call's `tool_call` stream goes on after `gateway.approval_required`
(seq 1), an approval's own stream counts its events from 1.

`send_in_order` produces envelopes where the platform would, approval events on
`awooop.approval.events.v1` keyed by their run."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    VoteRecorded,
    VoteRefused,
    approval_id_of,
)
from awooop.contracts.events.payloads.gateway import ToolCallRetried
from awooop.contracts.events.payloads.run import ToolCallApproved, ToolResultAccepted
from awooop.contracts.records.codec import EnvelopeCodec
from support.mcp_call_envelopes import POLICY_REVISION, TOOL_REVISION, Event, McpCallTraffic

TOKEN = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImRldi1hcHByb3ZhbHMiLCJ0eXAiOiJKV1QifQ"
    ".eyJqdGkiOiJhcHByb3ZhbC10b2tlbi1vZi10ZXN0cyJ9"
    ".c2lnbmF0dXJlLW9mLWEtdGVzdC10b2tlbi10aGF0LW5vLXJvdy1tYXktaG9sZA"
)
"""A grant's token as a compact JWS: no read-model row, column or line may hold it (nor
its signature)."""
TOKEN_SIGNATURE = TOKEN.rsplit(".", 1)[1]
_CODEC = EnvelopeCodec()


def token_id_of(approval_id: uuid.UUID) -> str:
    """A token id derived from the approval, as the platform's is."""
    return f"approval-{approval_id}"


@dataclass
class ApprovalTraffic(McpCallTraffic):
    """One run's tool calls and their approvals, in the order they are made (`events`);
    time moves one second per event."""

    _approval_seqs: Counter[uuid.UUID] = field(default_factory=Counter)
    _counts: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)

    def _approval_event(self, payload: Any) -> Event:
        self._approval_seqs[payload.approval_id] += 1
        seq = self._approval_seqs[payload.approval_id]
        return self._add(payload, ("approval", str(payload.approval_id), seq), "approval")

    def approval_of(self, call: Event) -> uuid.UUID:
        return approval_id_of(self.project, call.payload.call_id)

    @staticmethod
    def _request_facts(request: Event) -> dict[str, Any]:
        p = request.payload
        return {"approval_id": p.approval_id, "run_id": p.run_id, "call_id": p.call_id}

    def approval_requested(
        self,
        held: Event,
        *,
        approvers: tuple[str, ...] = ("alice", "bob", "carol"),
        approvals_required: int = 2,
        rejections_required: int = 2,
        requester: str | None = None,
        expires_in: dt.timedelta = dt.timedelta(minutes=10),
    ) -> Event:
        """The approval service's request for a call gate 5 held (`held`: its
        `gateway.approval_required`)."""
        p = held.payload
        return self._approval_event(
            ApprovalRequested(
                approval_id=approval_id_of(self.project, p.call_id),
                run_id=self.run_id,
                call_id=p.call_id,
                tool=p.tool,
                arguments=dict(p.arguments),
                argument_hash=p.argument_hash,
                action_hash=p.action_hash,
                scope=p.scope,
                mode=p.mode,
                revisions=(TOOL_REVISION, POLICY_REVISION),
                policy_revision=POLICY_REVISION,
                approvers=approvers,
                approvals_required=approvals_required,
                rejections_required=rejections_required,
                requester=requester or f"{self.project}:telegram:42",
                expires_at=self.at + dt.timedelta(seconds=len(self.events)) + expires_in,
            )
        )

    def voted(
        self, request: Event, approver: str, vote: str = "approve", via: str = "button"
    ) -> Event:
        """A counted vote; the counts after it follow from the votes before it."""
        approval_id = request.payload.approval_id
        approvals, rejections = self._counts.get(approval_id, (0, 0))
        if vote == "approve":
            approvals += 1
        else:
            rejections += 1
        self._counts[approval_id] = (approvals, rejections)
        return self._approval_event(
            VoteRecorded(
                **self._request_facts(request),
                approver_id=approver,
                vote=vote,
                via=via,
                subject=f"{self.project}:telegram:{approver}" if via == "button" else approver,
                approvals=approvals,
                rejections=rejections,
            )
        )

    def vote_refused(
        self,
        request: Event,
        *,
        subject: str,
        code: str,
        reason: str,
        vote: str = "approve",
        via: str = "button",
        approver_id: str | None = None,
    ) -> Event:
        return self._approval_event(
            VoteRefused(
                **self._request_facts(request),
                vote=vote,
                via=via,
                subject=subject,
                approver_id=approver_id,
                code=code,
                reason=reason,
            )
        )

    def granted(self, request: Event, approvers: tuple[str, ...], token: str = TOKEN) -> Event:
        p = request.payload
        return self._approval_event(
            ApprovalGranted(
                **self._request_facts(request),
                approvers=approvers,
                action_hash=p.action_hash,
                token=token,
                token_id=token_id_of(p.approval_id),
                token_kid="dev-approvals",
                token_expires_at=self.at + dt.timedelta(seconds=len(self.events), minutes=10),
            )
        )

    def denied(
        self, request: Event, *, code: str, reason: str, approvers: tuple[str, ...] = ()
    ) -> Event:
        return self._approval_event(
            ApprovalDenied(
                **self._request_facts(request), code=code, reason=reason, approvers=approvers
            )
        )

    def call_approved(self, request: Event, token: str = TOKEN) -> Event:
        """The runtime's word that the gateway may run the granted call, with the token."""
        p = request.payload
        return self._run_event(
            ToolCallApproved(
                call_id=p.call_id,
                approval_id=p.approval_id,
                token=token,
                execute_before=self.at + dt.timedelta(minutes=5),
            )
        )

    def retried(
        self,
        call: Event,
        *,
        attempt: int,
        code: str = "E-MCP-CALL-FAILED",
        reason: str = "ConnectionResetError: reset by peer",
        retry_in: float = 0.5,
        latency_ms: float | None = 4.0,
    ) -> Event:
        """One failed attempt of an approved call that the gateway tries again."""
        return self._gateway_event(
            ToolCallRetried(
                **self._facts(call),
                attempt=attempt,
                code=code,
                reason=reason,
                retry_in=retry_in,
                latency_ms=latency_ms,
            )
        )

    def accepted(
        self, call: Event, outcome: str, result: dict[str, Any] | str | None = None
    ) -> Event:
        """The run took the answer to `call` (`denied`: its approval was denied)."""
        return self._run_event(
            ToolResultAccepted(call_id=call.payload.call_id, outcome=outcome, result=result)
        )


def approvals_of_a_run(t: ApprovalTraffic) -> dict[str, Event]:
    """A run with three held calls, by name: one granted after two counted approvals and a
    refused vote of the requester, run after a retried attempt; one denied by two
    rejections; one still pending with one vote."""
    n: dict[str, Event] = {"started": t.started()}
    n["restart"] = t.requested("restart__demo", {"service": "cache", "notify": "ops@example.com"})
    n["restart_held"] = t.approval_required(n["restart"], reason="restarts need an approval")
    n["restart_asked"] = t.approval_requested(n["restart_held"])
    n["alice"] = t.voted(n["restart_asked"], "alice")
    n["requester"] = t.vote_refused(
        n["restart_asked"],
        subject=f"{t.project}:telegram:42",
        code="E-APPROVAL-REQUESTER",
        reason="the requester cannot approve their own request",
    )
    n["bob"] = t.voted(n["restart_asked"], "bob", via="api")
    n["restart_granted"] = t.granted(n["restart_asked"], ("alice", "bob"))
    n["restart_approved"] = t.call_approved(n["restart_asked"])
    n["restart_retried"] = t.retried(n["restart"], attempt=1)
    n["restart_done"] = t.succeeded(n["restart"], result={"restarted": True}, latency_ms=900.0)
    n["restart_result"] = t.accepted(n["restart"], "succeeded", {"restarted": True})
    n["drop"] = t.requested("drop__demo", {"table": "orders"})
    n["drop_held"] = t.approval_required(n["drop"], scope="admin", mode="active")
    n["drop_asked"] = t.approval_requested(n["drop_held"])
    n["carol"] = t.voted(n["drop_asked"], "carol", "reject")
    n["alice_drop"] = t.voted(n["drop_asked"], "alice", "reject", via="api")
    n["drop_denied"] = t.denied(
        n["drop_asked"],
        code="E-APPROVAL-REJECTED",
        reason="rejected by carol, alice",
        approvers=("carol", "alice"),
    )
    n["drop_result"] = t.accepted(n["drop"], "denied", {"code": "E-APPROVAL-REJECTED"})
    n["scale"] = t.requested("scale__demo", {"service": "web", "replicas": 3})
    n["scale_held"] = t.approval_required(n["scale"])
    n["scale_asked"] = t.approval_requested(n["scale_held"], approvers=("alice", "bob"))
    n["scale_vote"] = t.voted(n["scale_asked"], "bob")
    return n

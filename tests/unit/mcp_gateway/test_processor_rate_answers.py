"""Rate-limit tokens are spent once per call: a batch the consumer applies again (after an
outage, a version conflict, or record by record to isolate a bad one) rolls back its
database work but not Redis, so the answers of the first attempt are reused by call id;
a call an earlier batch decided spends none at all."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from awooop.infra.contracts.reader import ContractSource
from awooop.mcp_gateway.adapters.rate_limits import BucketRequest, RateDecision
from awooop.mcp_gateway.domain.calls import ToolCall
from awooop.mcp_gateway.domain.gates import GateInput, GateRefusal, Passed, Validators, first_gates
from awooop.mcp_gateway.processor import GatewayProcessor, _Pending
from support.contracts import agent_body, policy_body, status_tool_body, view_of

pytestmark = pytest.mark.unit

P = "acme"
LIMITS = [{"tool": "status__demo", "per_minute": 60, "burst": 1}]


class CountingLimiter:
    def __init__(self) -> None:
        self.asked: list[BucketRequest] = []

    async def take(self, requests: Sequence[BucketRequest]) -> list[RateDecision]:
        self.asked.extend(requests)
        return [
            RateDecision(len(self.asked) - len(requests) + n == 0, 1.0)
            for n in range(len(requests))
        ]


class DecidedBefore:
    """A connection whose `tool_calls` already holds `decided`."""

    def __init__(self, decided: set[str]) -> None:
        self.decided = decided

    async def fetch(self, _query: str, ids: list[str]) -> list[dict[str, Any]]:
        return [{"call_id": call_id} for call_id in ids if call_id in self.decided]


def _pending(view: Any, call_id: str) -> _Pending:
    call = ToolCall(
        call_id=call_id,
        run_id="run-1",
        project_id=P,
        tool="status__demo",
        arguments={"service": "checkout"},
        execute_before=dt.datetime.now(dt.UTC),
        trace_id="0" * 32,
        request_event_id=uuid.uuid4(),
        agent_ref=view.refs()[(P, "demo-agent")],
    )
    decision = first_gates(
        view,
        GateInput(P, call.tool, call.arguments, call.agent_ref),
        listing=None,
        killed=False,
        validators=Validators(),
    )
    assert isinstance(decision, Passed)
    return _Pending(call, decision)


def _processor(limiter: CountingLimiter) -> GatewayProcessor:
    return GatewayProcessor(
        contracts=ContractSource(),
        listing=lambda _p, _t: None,
        limiter=limiter,  # type: ignore[arg-type]
        wake_executor=lambda: None,
        clock=lambda: dt.datetime.now(dt.UTC),
        service="mcp_gateway",
    )


async def test_a_batch_applied_again_spends_no_second_token() -> None:
    view = view_of(
        (
            P,
            {
                "demo-agent": agent_body(),
                "status-demo": status_tool_body(),
                "policy": policy_body("active", rate_limits=LIMITS),
            },
        )
    )
    limiter = CountingLimiter()
    processor = _processor(limiter)
    batch = [_pending(view, "call-1"), _pending(view, "call-2")]
    conn = DecidedBefore(set())

    first = await processor._rate_limited(conn, batch)  # type: ignore[arg-type]
    again = await processor._rate_limited(conn, batch)  # type: ignore[arg-type]

    assert [r.project_id for r in limiter.asked] == [P, P]  # two calls, asked once each
    outcome = [isinstance(p.decision, GateRefusal) for p in first]
    assert outcome == [False, True]  # burst 1: the second waits
    assert [isinstance(p.decision, GateRefusal) for p in again] == outcome


async def test_a_call_an_earlier_batch_decided_spends_no_token() -> None:
    view = view_of(
        (
            P,
            {
                "demo-agent": agent_body(),
                "status-demo": status_tool_body(),
                "policy": policy_body("active", rate_limits=LIMITS),
            },
        )
    )
    limiter = CountingLimiter()
    batch = [_pending(view, "call-old"), _pending(view, "call-new")]
    await _processor(limiter)._rate_limited(DecidedBefore({"call-old"}), batch)  # type: ignore[arg-type]
    assert len(limiter.asked) == 1

"""The gateway's handler table: `run.tool_call_requested` → gate decision, inside the batch.

No network call happens here. An admitted call is only recorded (once per
call id) and the executor is woken after the commit; a refused call is
answered `gateway.tool_call_blocked` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from awooop.contracts.families.builtin import Catalogue
from awooop.contracts.records.envelope import Envelope
from awooop.infra.handler_table import Handler, HandlerContext, HandlerTable
from awooop.mcp_gateway.adapters import tool_calls
from awooop.mcp_gateway.adapters.tool_calls import outcome_event
from awooop.mcp_gateway.domain.calls import blocked, requested_call
from awooop.mcp_gateway.domain.gate import GateRefusal, gate_tool_known

TOOL_CALL_REQUESTED = "run.tool_call_requested"

Clock = Callable[[], dt.datetime]


def tool_call_requests(
    wake_executor: Callable[[], None],
    *,
    catalogue: Catalogue,
    revision: str,
    clock: Clock,
    service: str,
) -> HandlerTable:
    """The gateway's processor; `wake_executor` runs after a batch admitted calls."""

    async def on_tool_call_requested(ctx: HandlerContext, request: Envelope[Any]) -> None:
        call = requested_call(request)
        decision = gate_tool_known(catalogue, call.tool)
        if isinstance(decision, GateRefusal):
            if await tool_calls.record_decision(ctx.conn, call, "blocked", revision, decision.code):
                await ctx.append([outcome_event(blocked(call, decision, revision, clock()))])
            return
        if await tool_calls.record_decision(ctx.conn, call, "admitted", revision, None):
            ctx.after_commit(wake_executor)

    handlers: dict[str, Handler] = {TOOL_CALL_REQUESTED: on_tool_call_requested}
    return HandlerTable(service, handlers)

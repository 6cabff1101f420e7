"""The gateway's handler table: `run.tool_call_requested` → gate decision, inside the batch.

No network call happens here. An admitted call is only recorded (once per
call id) and the executor is woken after the commit; a refused call is
answered `gateway.tool_call_blocked` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.infra.contracts.reader import ContractSource
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
    contracts: ContractSource,
    clock: Clock,
    service: str,
) -> HandlerTable:
    """The gateway's processor; `wake_executor` runs after a batch admitted calls."""

    async def on_tool_call_requested(ctx: HandlerContext, request: Envelope[Any]) -> None:
        call = requested_call(request)
        decision = gate_tool_known(contracts.view, call.project_id, call.tool)
        if isinstance(decision, GateRefusal):
            read = ",".join(decision.revisions)
            if await tool_calls.record_decision(ctx.conn, call, "blocked", read, decision.code):
                await ctx.append([outcome_event(blocked(call, decision, clock()))])
            return
        # The admitting revision is kept with the call: the executor runs that revision.
        if await tool_calls.record_decision(ctx.conn, call, "admitted", decision.ref, None):
            ctx.after_commit(wake_executor)

    handlers: dict[str, Handler] = {TOOL_CALL_REQUESTED: on_tool_call_requested}
    return HandlerTable(service, handlers)

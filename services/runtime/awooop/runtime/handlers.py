"""Kafka handlers of the runtime: fold inputs into runs under their row lock.

They never call an agent: when a step is due they lease the run to this
process and, once the batch committed, hand it to the local step pool.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from awooop.contracts.catalogue import MODE_WITHOUT_POLICY, builtin_catalogue
from awooop.contracts.envelope import Envelope
from awooop.infra.handler_table import HandlerContext, HandlerTable
from awooop.runtime.adapters import runs
from awooop.runtime.domain.run import accept_tool_result, reject_double_text, start_run
from awooop.runtime.recording import record
from awooop.runtime.scheduler import StepPool

OUTCOMES = {
    "gateway.tool_call_succeeded": "succeeded",
    "gateway.tool_call_blocked": "blocked",
    "gateway.tool_call_failed": "failed",
}


def runtime_handlers(pool: StepPool) -> HandlerTable:
    catalogue, revision = builtin_catalogue()

    async def on_message(ctx: HandlerContext, env: Envelope[Any]) -> None:
        message = env.payload
        now = dt.datetime.now(dt.UTC)
        active = await runs.lock_active_run(ctx.conn, env.project_id, message.platform_subject_id)
        if active is not None:
            decision = reject_double_text(active, env.event_id)
            run, events = record(decision, active.version, causation_id=str(env.event_id), now=now)
            await ctx.append(events)
            await runs.record_version(ctx.conn, run, events[-1].event_id)
            return
        agent = catalogue.default_agent
        decision = start_run(
            env.event_id,
            env.project_id,
            message,
            agent,
            MODE_WITHOUT_POLICY,
            revision,
            env.trace_id,
        )
        run, events = record(decision, 0, causation_id=str(env.event_id), now=now)
        lease = await runs.insert_run(
            ctx.conn,
            run,
            last_event_id=events[-1].event_id,
            owner=pool.owner,
            lease_seconds=pool.lease_seconds,
            max_attempts=agent.max_attempts,
            timeout_seconds=agent.run_timeout_seconds,
        )
        if lease is None:
            return  # started long ago by this very message (past the inbox horizon)
        await ctx.append(events)
        ctx.after_commit(lambda: pool.submit(lease))

    async def on_tool_outcome(ctx: HandlerContext, env: Envelope[Any]) -> None:
        run = await runs.lock_run(ctx.conn, _run_id(env))
        if run is None:
            return
        outcome = OUTCOMES[env.event_type]
        decision = accept_tool_result(
            run, env.payload.call_id, outcome, runs.result_of(env.payload)
        )
        if decision is None:
            return  # an answer nobody waits for
        now = dt.datetime.now(dt.UTC)
        resumed, events = record(decision, run.version, causation_id=str(env.event_id), now=now)
        await ctx.append(events)
        lease = await runs.save_run(
            ctx.conn,
            resumed,
            last_event_id=events[-1].event_id,
            lease_to=pool.owner,
            lease_seconds=pool.lease_seconds,
        )
        if lease is not None:
            ctx.after_commit(lambda: pool.submit(lease))

    table: dict[str, Any] = {"ingress.message_received": on_message}
    table.update(dict.fromkeys(OUTCOMES, on_tool_outcome))
    return HandlerTable("runtime", table)


def _run_id(env: Envelope[Any]) -> uuid.UUID:
    return uuid.UUID(env.correlation_id)

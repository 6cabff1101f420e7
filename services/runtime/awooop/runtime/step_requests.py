"""What a step sends its provider.

A remote step reads what its model must see inside the step's first transaction: the
run's own message and the chat's earlier turns the agent keeps (`chat_turns`), the tool
calls the run made with the answers it resumed with (its own stream), and the tools
it is granted, described from their contracts. A scripted step needs none of it: its
script knows its answer, and its prompt is the agent's own.
"""

from __future__ import annotations

import uuid

import asyncpg

from awooop.infra.postgres import event_store
from awooop.runtime.adapters import chat_turns, run_events
from awooop.runtime.domain.contracts import RunContracts
from awooop.runtime.domain.llm import StepRequest
from awooop.runtime.domain.prompt import Exchange, conversation, tool_specs
from awooop.runtime.domain.run import StepPlan
from awooop.runtime.domain.scripted import SCRIPTED_MODEL
from awooop.runtime.providers import model_of


def scripted(plan: StepPlan, max_tokens: int) -> StepRequest:
    """A scripted step's request: the agent's prompt, the step and the last result."""
    return StepRequest(
        model=SCRIPTED_MODEL,
        messages=conversation(plan.agent, (), "", ()),
        tools=(),
        max_tokens=max_tokens,
        timeout_seconds=plan.agent.step_timeout_seconds,
        step=plan.number,
        last_result=plan.run.last_result,
    )


async def remote(
    conn: asyncpg.Connection, contracts: RunContracts, plan: StepPlan, max_tokens: int
) -> StepRequest:
    """A remote step's request, read in the step's first transaction."""
    run, agent = plan.run, plan.agent
    message, history = await chat_turns.run_message_and_history(
        conn, run.run_id, agent.history_turns
    )
    schemas = {}
    for grant in agent.tools:
        tool = contracts.tool(run.project_id, grant.name)
        if tool is not None:
            schemas[grant.name] = (tool.document.description, tool.document.input_schema)
    return StepRequest(
        model=model_of(agent),
        messages=conversation(agent, history, message, await _exchanges(conn, run.run_id)),
        tools=tool_specs(agent, schemas),
        max_tokens=max_tokens,
        timeout_seconds=agent.step_timeout_seconds,
        output_schema=agent.output_schema,
        step=plan.number,
        last_result=run.last_result,
    )


async def _exchanges(conn: asyncpg.Connection, run_id: uuid.UUID) -> list[Exchange]:
    """The tool calls of the run so far, each with the answer it resumed with."""
    calls: dict[str, Exchange] = {}
    for stored in await event_store.load_stream(conn, str(run_id)):
        envelope = run_events.decode(stored.data)
        payload = envelope.payload
        if envelope.event_type == "run.tool_call_requested":
            calls[payload.call_id] = Exchange(
                payload.call_id, payload.tool, dict(payload.arguments), None, None
            )
        elif envelope.event_type == "run.tool_result_accepted" and payload.call_id in calls:
            asked = calls[payload.call_id]
            calls[payload.call_id] = Exchange(
                asked.call_id, asked.tool, asked.arguments, payload.outcome, payload.result
            )
    return list(calls.values())

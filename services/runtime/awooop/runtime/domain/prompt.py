"""The conversation one LLM step sends: the agent's prompt, the chat's earlier turns, the
run's own message and the tool calls the run made so far with their results.

Earlier turns are those of the run's chat only, the last `history_turns` of them
before the run's own message (a turn is one message, a person's or the agent's).
Every tool call the run asked for is answered in the conversation: with its
result, or with the gateway's refusal or failure as an error result, so the
model learns that the call did not happen instead of never hearing of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from awooop.contracts.families.agent import Agent
from awooop.runtime.domain.llm import Message, ToolCall, ToolSpec


@dataclass(frozen=True)
class Turn:
    """One message of a chat as the runtime keeps it: `user` or `assistant`."""

    role: str
    text: str


@dataclass(frozen=True)
class NewTurn:
    """A turn to keep: a run's own message (`user`) or its reply (`assistant`)."""

    project_id: str
    channel_type: str
    chat_id: str
    run_id: uuid.UUID
    role: str
    text: str


@dataclass(frozen=True)
class Exchange:
    """One tool call of the run, and the answer the run resumed with (None while waiting)."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    outcome: str | None
    result: Any


def conversation(
    agent: Agent,
    history: Sequence[Turn],
    message: str,
    exchanges: Sequence[Exchange],
) -> tuple[Message, ...]:
    """The messages of a step, oldest first (`history` oldest first, already cut)."""
    messages: list[Message] = []
    if agent.system_prompt:
        messages.append(Message("system", agent.system_prompt))
    messages.extend(
        Message("assistant" if t.role == "assistant" else "user", t.text) for t in history
    )
    messages.append(Message("user", message))
    for exchange in exchanges:
        call = ToolCall(exchange.tool, exchange.arguments, call_id=exchange.call_id)
        messages.append(Message("assistant", "", tool_call=call))
        if exchange.outcome is not None:
            content = tool_answer(exchange.outcome, exchange.result)
            messages.append(Message("tool", content, call_id=exchange.call_id))
    return tuple(messages)


def tool_answer(outcome: str, result: Any) -> str:
    """The tool message's content: the result, or an error result the model can read."""
    if outcome == "succeeded":
        return json.dumps(result, sort_keys=True, default=str)
    return json.dumps({"error": outcome, "detail": result}, sort_keys=True, default=str)


def tool_specs(
    agent: Agent, schemas: dict[str, tuple[str, dict[str, Any]]]
) -> tuple[ToolSpec, ...]:
    """The tools the agent is granted, described from their contracts (`schemas` maps a
    tool name to its description and input schema; a grant with no contract is left out:
    the gateway would refuse it anyway)."""
    specs = []
    for grant in agent.tools:
        found = schemas.get(grant.name)
        if found is not None:
            specs.append(ToolSpec(grant.name, found[0], found[1]))
    return tuple(specs)

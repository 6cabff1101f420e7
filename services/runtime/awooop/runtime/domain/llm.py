"""What one LLM step asks of a provider and what it gets back.

A provider takes a `StepRequest` (the conversation so far, the tools the agent
may call, a `max_tokens` the budget has already paid for) and answers with a
`StepOutput`: one tool call or a reply, and the tokens it used. It never sees
the database: a step leases its run, commits, asks the provider outside any
transaction, and commits the output under the same lease epoch.

`ProviderError` is the only failure a provider raises; `transient` says whether
the same request may succeed later (a 429, a 5xx, a timeout after the
provider's own retries), which the step turns into a retried attempt, never a
failed run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    """The model asks for one tool with these arguments; `call_id` is the provider's own id
    for the call (OpenAI's `tool_call_id`), kept so its result can be matched in a re-ask."""

    tool: str
    arguments: Mapping[str, Any]
    call_id: str = ""


@dataclass(frozen=True)
class Message:
    """One turn of the conversation a step sends.

    `tool_call` is set on an assistant turn that asked for a tool; a `tool` turn answers
    it (`content` is the result as JSON text, `call_id` the call it answers)."""

    role: Role
    content: str
    tool_call: ToolCall | None = None
    call_id: str = ""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its mangled name, description and input JSON Schema."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@dataclass(frozen=True)
class StepRequest:
    """One LLM step of a run: the model, the messages, the tools and the token cap."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    max_tokens: int
    timeout_seconds: float
    output_schema: Mapping[str, Any] | None = None
    step: int = 0
    """Which step of the run this is (the scripted provider plays its script by it)."""
    last_result: Any = None
    """The result the run resumed with, for the scripted provider's `{result}`."""


@dataclass(frozen=True)
class StepOutput:
    """What the model answered: a tool call, or a reply (exactly one of them)."""

    model: str
    tokens_in: int
    tokens_out: int
    tool_call: ToolCall | None = None
    reply: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A provider could not answer: `transient` when the same request may succeed later."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class Provider(Protocol):
    """An LLM provider: one chat completion per call, no state between calls."""

    async def complete(self, request: StepRequest) -> StepOutput: ...

"""The ``agent`` contract family: one agent of a project, its provider, tools and limits.

The JSON Schema ``schemas/agent.schema.json`` is the source of the family; :class:`Agent`
accepts exactly the documents the schema accepts (the parity tests hold the two
together). Rules JSON Schema cannot state are checked where the document is used:

- each tool is granted once (the schema can only refuse identical grants), the tool
  exists, and the scope granted is within the tool's own: the MCP gateway, when it folds
  the contract, and gates 2 and 3 on every call;
- a script's ``call_tool`` names a granted tool: gate 2 refuses any other;
- ``output_schema`` is itself a valid JSON Schema and ``step_timeout_seconds`` is at
  most ``run_timeout_seconds``: the runtime, when it folds the contract.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
)

from awooop.contracts.families.fields import (
    AgentId,
    CredentialReference,
    FrozenDocument,
    HttpUrlText,
    JsonInteger,
    SchemaVersion1,
    Scope,
    ToolName,
    not_null,
    unique,
)

FAMILY = "agent"


class CallToolStep(FrozenDocument):
    """A script step: call one tool with these arguments."""

    call_tool: ToolName
    arguments: dict[str, Any]


class ReplyStep(FrozenDocument):
    """A script step: answer with this text."""

    reply: str


class ScriptedProvider(FrozenDocument):
    """The deterministic provider of demos and tests: it plays its script in order."""

    kind: Literal["scripted"]
    script: Annotated[tuple[CallToolStep | ReplyStep, ...], Field(min_length=1)]


class OpenAICompatibleProvider(FrozenDocument):
    """An OpenAI-compatible chat completions endpoint."""

    kind: Literal["openai_compatible"]
    model: Annotated[str, Field(min_length=1)]
    base_url: HttpUrlText
    api_key: Annotated[CredentialReference | None, BeforeValidator(not_null)] = None


Provider = Annotated[ScriptedProvider | OpenAICompatibleProvider, Field(discriminator="kind")]
"""The LLM provider, told apart by ``kind`` (the schema's ``oneOf`` with a ``kind`` const)."""


class ToolGrant(FrozenDocument):
    """A tool this agent may call, and the scope granted to it for that tool."""

    name: ToolName
    scope: Scope


class Agent(FrozenDocument):
    """An ``agent`` document (schema version 1).

    ``edits`` says what an edited chat message (Telegram ``edited_message``, Slack
    ``message_changed``) does: ``ignore`` (the default) records it as ignored and starts
    nothing; ``as_message`` lets it arrive as a message of its own, marked ``edited``,
    which starts a run (or meets ``double_texting``) like any other.
    """

    family: Literal["agent"]
    schema_version: SchemaVersion1
    agent_id: AgentId
    provider: Provider
    system_prompt: Annotated[str, Field(max_length=32_768)] = ""
    history_turns: Annotated[JsonInteger, Field(ge=0, le=100)]
    tools: Annotated[tuple[ToolGrant, ...], AfterValidator(unique)]
    max_steps: Annotated[JsonInteger, Field(ge=1, le=100)]
    max_consecutive_failures: Annotated[JsonInteger, Field(ge=1, le=20)]
    step_timeout_seconds: Annotated[JsonInteger, Field(ge=1, le=3600)]
    run_timeout_seconds: Annotated[JsonInteger, Field(ge=1, le=86_400)]
    max_attempts: Annotated[JsonInteger, Field(ge=1, le=10)]
    output_schema: Annotated[dict[str, Any] | None, BeforeValidator(not_null)] = None
    double_texting: Literal["reject", "enqueue", "interrupt"]
    progress_after_seconds: Annotated[JsonInteger, Field(ge=1, le=3600)] = 30
    edits: Literal["ignore", "as_message"] = "ignore"

"""The built-in catalogue: the scripted demo agent, the demo tool and the run-state table.

It stands in for the `agent`, `tool` and `policy` contract families until they
land: one JSON file, validated by the models below, whose revision is
`builtin:<sha256 of the file>` so every decision can name what it used. Any
project id is accepted, and a project with no policy is in `shadow` mode.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from awooop.contracts.families.runtime_run_state import RuntimeRunState

MODE_WITHOUT_POLICY: Literal["shadow"] = "shadow"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallTool(_Frozen):
    """A script step: ask for one tool call."""

    call_tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Reply(_Frozen):
    """A script step: answer, `{result}` standing for the last tool result."""

    reply: str


class AgentDefinition(_Frozen):
    agent_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
    double_texting: Literal["reject", "enqueue", "interrupt"]
    max_attempts: Annotated[int, Field(ge=1, le=10)]
    step_timeout_seconds: Annotated[int, Field(ge=1, le=3600)]
    run_timeout_seconds: Annotated[int, Field(ge=1, le=86_400)]
    script: Annotated[tuple[CallTool | Reply, ...], Field(min_length=1)]


class ToolDefinition(_Frozen):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*__[a-z][a-z0-9_]*$")]
    provider: str
    tool: str
    description: str
    scope: Literal["read", "write", "admin"]
    enabled: bool
    transport: Literal["stdio"]
    command: Annotated[tuple[str, ...], Field(min_length=1)]


class Catalogue(_Frozen):
    agents: Annotated[tuple[AgentDefinition, ...], Field(min_length=1)]
    tools: tuple[ToolDefinition, ...]
    runtime_run_state: RuntimeRunState

    def agent(self, agent_id: str) -> AgentDefinition:
        for agent in self.agents:
            if agent.agent_id == agent_id:
                return agent
        raise KeyError(f"agent {agent_id!r} is not in the catalogue")

    def tool(self, name: str) -> ToolDefinition | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def default_agent(self) -> AgentDefinition:
        return self.agents[0]


@cache
def builtin_catalogue() -> tuple[Catalogue, str]:
    """The built-in catalogue and its revision, `builtin:<sha256 of the file>`."""
    raw = resources.files("awooop.contracts.families").joinpath("builtin.json").read_bytes()
    revision = "builtin:" + hashlib.sha256(raw).hexdigest()
    return Catalogue.model_validate_json(raw), revision

"""Gate 1 of the five: the tool has an active, enabled revision in the call's project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from awooop.contracts.families.tool import Tool
from awooop.contracts.registries.errors import E_MCP_GATE_001, MCP_GATE_OF


class ToolRevision(Protocol):
    """A tool contract document and its revision (``<contract>@<n>:<digest prefix>``)."""

    @property
    def ref(self) -> str: ...

    @property
    def document(self) -> Tool: ...


class ToolContracts(Protocol):
    """The active tool revisions of every project, as the gates ask them."""

    def tool(self, project_id: str, name: str) -> ToolRevision | None: ...


@dataclass(frozen=True, slots=True)
class GateRefusal:
    """Which gate refused a call, its `E-MCP-GATE-*` code, and the revisions it read."""

    gate: int
    code: str
    reason: str
    revisions: tuple[str, ...] = ()


def gate_tool_known(
    contracts: ToolContracts, project_id: str, tool_name: str
) -> ToolRevision | GateRefusal:
    """The project's active revision of `tool_name`, or gate 1's refusal when it has none
    or the revision disables the tool."""
    tool = contracts.tool(project_id, tool_name)
    if tool is None:
        return _refused(f"tool {tool_name!r} has no active contract in the project")
    if not tool.document.enabled:
        return _refused(f"tool {tool_name!r} is disabled by {tool.ref}", (tool.ref,))
    return tool


def _refused(reason: str, revisions: tuple[str, ...] = ()) -> GateRefusal:
    return GateRefusal(MCP_GATE_OF[E_MCP_GATE_001.code], E_MCP_GATE_001.code, reason, revisions)

"""Gate 1 of the five: the tool is known to the catalogue and enabled."""

from __future__ import annotations

from dataclasses import dataclass

from awooop.contracts.families.builtin import Catalogue, ToolDefinition
from awooop.contracts.registries.errors import E_MCP_GATE_001, MCP_GATE_OF


@dataclass(frozen=True, slots=True)
class GateRefusal:
    """Which gate refused a call and its `E-MCP-GATE-*` code."""

    gate: int
    code: str
    reason: str


def gate_tool_known(catalogue: Catalogue, tool_name: str) -> ToolDefinition | GateRefusal:
    """The catalogue's tool for `tool_name`, or gate 1's refusal when unknown or disabled."""
    tool = catalogue.tool(tool_name)
    if tool is None:
        return _refused(f"tool {tool_name!r} is not in the catalogue")
    if not tool.enabled:
        return _refused(f"tool {tool_name!r} is disabled")
    return tool


def _refused(reason: str) -> GateRefusal:
    return GateRefusal(MCP_GATE_OF[E_MCP_GATE_001.code], E_MCP_GATE_001.code, reason)

"""Gate 1: a tool passes only when the catalogue knows it and it is enabled."""

from __future__ import annotations

import pytest

from awooop.contracts.families.builtin import Catalogue, builtin_catalogue
from awooop.contracts.registries.errors import E_MCP_GATE_001
from awooop.mcp_gateway.domain.gate import GateRefusal, gate_tool_known

pytestmark = pytest.mark.unit


def _with_demo_tool(enabled: bool) -> Catalogue:
    catalogue, _ = builtin_catalogue()
    tools = tuple(
        t.model_copy(update={"enabled": enabled}) if t.name == "status__demo" else t
        for t in catalogue.tools
    )
    return catalogue.model_copy(update={"tools": tools})


def test_a_known_enabled_tool_is_admitted_with_its_definition() -> None:
    catalogue, _ = builtin_catalogue()
    decision = gate_tool_known(catalogue, "status__demo")
    assert not isinstance(decision, GateRefusal)
    assert (decision.provider, decision.tool) == ("demo", "status")


@pytest.mark.parametrize("name", ["rm_rf__demo", "status", "status__other", ""])
def test_an_unknown_tool_is_refused_at_gate_1(name: str) -> None:
    catalogue, _ = builtin_catalogue()
    decision = gate_tool_known(catalogue, name)
    assert decision == GateRefusal(1, E_MCP_GATE_001.code, f"tool {name!r} is not in the catalogue")


def test_a_disabled_tool_is_refused_at_gate_1() -> None:
    decision = gate_tool_known(_with_demo_tool(enabled=False), "status__demo")
    assert isinstance(decision, GateRefusal)
    assert (decision.gate, decision.code) == (1, "E-MCP-GATE-001")
    assert "disabled" in decision.reason


def test_enabling_the_tool_again_admits_it() -> None:
    decision = gate_tool_known(_with_demo_tool(enabled=True), "status__demo")
    assert not isinstance(decision, GateRefusal)

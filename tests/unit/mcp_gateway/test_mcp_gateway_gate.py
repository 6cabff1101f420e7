"""Gate 1: a tool passes only with an active, enabled revision in the call's project."""

from __future__ import annotations

import pytest

from awooop.contracts.registries.errors import E_MCP_GATE_001
from awooop.mcp_gateway.domain.gate import GateRefusal, gate_tool_known
from support.contracts import status_tool_body, view_of

pytestmark = pytest.mark.unit


def test_an_active_enabled_tool_is_admitted_with_its_revision() -> None:
    view = view_of(("acme", {"status-demo": status_tool_body()}))
    decision = gate_tool_known(view, "acme", "status__demo")
    assert not isinstance(decision, GateRefusal)
    assert (decision.document.provider, decision.document.tool) == ("demo", "status")
    assert decision.ref.startswith("status-demo@1:")


@pytest.mark.parametrize("name", ["rm_rf__demo", "status", "status__other", ""])
def test_an_unknown_tool_is_refused_at_gate_1(name: str) -> None:
    view = view_of(("acme", {"status-demo": status_tool_body()}))
    decision = gate_tool_known(view, "acme", name)
    assert decision == GateRefusal(
        1, E_MCP_GATE_001.code, f"tool {name!r} has no active contract in the project"
    )


def test_another_projects_tool_is_refused_at_gate_1() -> None:
    view = view_of(("acme", {"status-demo": status_tool_body()}))
    decision = gate_tool_known(view, "globex", "status__demo")
    assert isinstance(decision, GateRefusal)
    assert decision.revisions == ()


def test_a_disabled_tool_is_refused_at_gate_1_naming_the_revision() -> None:
    view = view_of(("acme", {"status-demo": status_tool_body(enabled=False)}))
    decision = gate_tool_known(view, "acme", "status__demo")
    assert isinstance(decision, GateRefusal)
    assert (decision.gate, decision.code) == (1, "E-MCP-GATE-001")
    assert "disabled" in decision.reason
    assert len(decision.revisions) == 1
    assert decision.revisions[0].startswith("status-demo@1:")

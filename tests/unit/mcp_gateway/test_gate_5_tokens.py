"""Gate 5 with a token, as a pure decision on a held call: the token lets through exactly
the call it names under the policy revision active now, and nothing else; arguments read
back from the gateway's store name the same action they were held with."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from awooop.contracts.events.payloads.approval import approval_id_of
from awooop.contracts.events.payloads.run import ToolCallApproved
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.mcp_gateway.adapters.tool_calls import stored_arguments
from awooop.mcp_gateway.domain.approvals import (
    HeldCall,
    Presented,
    check_token,
    held_action_hash,
)
from awooop.mcp_gateway.domain.calls import ToolCall
from awooop.mcp_gateway.domain.gates import GateInput, GateRefusal, Passed, Validators, first_gates
from awooop.mcp_gateway.processor import _presented
from awooop.security.approval_tokens import (
    ApprovalClaims,
    ApprovalGrant,
    ApprovalTokenVerifier,
    mint_approval_token,
)
from awooop.security.signing_keys import KeyRing, SigningKey, generate_ed25519_keys
from support.contracts import agent_body, granting, policy_body, tool_body, view_of

pytestmark = pytest.mark.unit

P = "acme"
KEYS = generate_ed25519_keys("gate-5")
VERIFIER = ApprovalTokenVerifier(KeyRing.from_spec(KEYS.verifying_spec))
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
VIEW = view_of(
    (
        P,
        {
            "demo-agent": granting(agent_body(), ("restart__demo", "write")),
            "restart-demo": tool_body("restart", scope="write"),
            "policy": policy_body("suggest"),
        },
    )
)
CALL = ToolCall(
    call_id="call-1",
    run_id="run-1",
    project_id=P,
    tool="restart__demo",
    arguments={"service": "checkout"},
    execute_before=NOW + dt.timedelta(minutes=5),
    trace_id="0" * 32,
    request_event_id=uuid.uuid4(),
    agent_ref=VIEW.refs()[(P, "demo-agent")],
)
APPROVAL = approval_id_of(P, CALL.call_id)


def passed() -> Passed:
    decision = first_gates(
        VIEW,
        GateInput(P, CALL.tool, CALL.arguments, CALL.agent_ref),
        listing=None,
        killed=False,
        validators=Validators(),
    )
    assert isinstance(decision, Passed)
    assert decision.approval is not None  # a write in suggest mode is held
    return decision


def token(action: str, **changes: Any) -> str:
    grant = ApprovalGrant(
        approval_id=APPROVAL,
        project_id=P,
        run_id=CALL.run_id,
        call_id=CALL.call_id,
        action_hash=action,
        issued_at=NOW - dt.timedelta(minutes=1),
        expires_at=NOW + dt.timedelta(minutes=9),
    )
    grant = replace(grant, **changes)
    return mint_approval_token(SigningKey.from_spec(KEYS.signing_spec), grant)


def presented(text: str, approval_id: uuid.UUID = APPROVAL) -> Presented:
    return Presented(HeldCall(CALL, 2), approval_id, text)


def held_hash() -> str:
    return held_action_hash(CALL, passed().policy_ref)


def test_a_token_for_the_call_as_held_lets_it_through() -> None:
    checked = check_token(VERIFIER, presented(token(held_hash())), passed(), NOW)
    assert isinstance(checked, ApprovalClaims)
    assert (checked.call_id, checked.approval_id) == (CALL.call_id, APPROVAL)


@pytest.mark.parametrize(
    ("changes", "code", "said"),
    [
        ({"run_id": "run-2"}, "E-MCP-GATE-009", "another run"),
        ({"call_id": "call-2"}, "E-MCP-GATE-009", "another call"),
        ({"project_id": "other"}, "E-MCP-GATE-009", "another project"),
        ({"action_hash": "a" * 64}, "E-MCP-GATE-009", "another action"),
        (
            {
                "issued_at": NOW - dt.timedelta(minutes=20),
                "expires_at": NOW - dt.timedelta(minutes=10),
            },
            "E-MCP-GATE-008",
            "expired",
        ),
    ],
)
def test_a_token_for_anything_else_is_refused_at_gate_5(
    changes: dict[str, Any], code: str, said: str
) -> None:
    checked = check_token(VERIFIER, presented(token(held_hash(), **changes)), passed(), NOW)
    assert isinstance(checked, GateRefusal)
    assert (checked.gate, checked.code) == (5, code)
    assert said in checked.reason
    assert checked.revisions == passed().revisions


def test_a_token_held_under_another_policy_revision_names_another_action() -> None:
    earlier = held_action_hash(CALL, "policy@1:000000000000")
    checked = check_token(VERIFIER, presented(token(earlier)), passed(), NOW)
    assert isinstance(checked, GateRefusal)
    assert checked.code == "E-MCP-GATE-009"


def test_a_token_presented_by_another_approval_is_refused() -> None:
    checked = check_token(VERIFIER, presented(token(held_hash()), uuid.uuid4()), passed(), NOW)
    assert isinstance(checked, GateRefusal)
    assert checked.code == "E-MCP-GATE-009"


def test_without_a_key_ring_every_token_is_refused() -> None:
    checked = check_token(None, presented(token(held_hash())), passed(), NOW)
    assert isinstance(checked, GateRefusal)
    assert checked.code == "E-MCP-GATE-008"
    assert "AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS" in checked.reason


@pytest.mark.parametrize(
    "arguments",
    [
        {"service": "checkout", "n": 3},
        {"ratio": 0.1, "big": 1e20, "tiny": 1.5e-10, "whole": 5.0, "edge": 2**53 - 1},
        {"nested": {"list": [1, 2.5, "x", None, True], "neg": -7}},
    ],
)
def test_arguments_read_back_from_jsonb_name_the_same_action(arguments: dict[str, Any]) -> None:
    # What Postgres jsonb gives back for these values: digits for a float with an
    # integral value, a decimal point kept on a whole float, keys reordered.
    as_jsonb = {
        '{"service": "checkout", "n": 3}': '{"n": 3, "service": "checkout"}',
    }
    text = json.dumps(arguments)
    stored = as_jsonb.get(text, text.replace("1e+20", "100000000000000000000"))
    stored = stored.replace("1.5e-10", "0.00000000015")
    again = stored_arguments(stored)
    assert again == arguments
    held, read = replace(CALL, arguments=arguments), replace(CALL, arguments=again)
    assert held_action_hash(held, "policy@1:x") == held_action_hash(read, "policy@1:x")


def _approval_event(project: str, run_id: str) -> Envelope[ToolCallApproved]:
    return new_envelope(
        ToolCallApproved(
            call_id=CALL.call_id,
            approval_id=APPROVAL,
            token="t" * 32,
            execute_before=NOW + dt.timedelta(minutes=5),
        ),
        occurred_at=NOW,
        project_id=project,
        stream_type="run",
        stream_id=run_id,
        stream_seq=5,
        trace_id="1" * 32,
        correlation_id=run_id,
        actor="service:runtime",
        producer="runtime",
    )


def test_an_approval_releases_only_a_held_call_of_its_own_project_and_run() -> None:
    held = {CALL.call_id: HeldCall(CALL, 2)}
    mine = _presented(_approval_event(P, CALL.run_id), held)
    assert mine is not None
    assert (mine.held.call, mine.approval_id) == (CALL, APPROVAL)
    assert _presented(_approval_event("other", CALL.run_id), held) is None
    assert _presented(_approval_event(P, "run-2"), held) is None
    assert _presented(_approval_event(P, CALL.run_id), {}) is None  # not held (any more)

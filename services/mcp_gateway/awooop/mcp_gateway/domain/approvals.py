"""Gate 5 with an approval token: the held call it releases, and the action it names.

A held call waits `awaiting_approval`; `run.tool_call_approved` presents the token the
approval service granted for it. The call passes gates 1 to 4 again, as a new request
would, then the token must verify (`E-MCP-GATE-008` otherwise: malformed, forged,
expired, an unknown or retired key), name the approval presenting it, and be bound to
exactly this call as it would be held now: its project, run and call id, and the action
hash recomputed from the stored arguments and the policy revision active now. A policy
changed between the hold and the grant changes the hash, and the token is refused
(`E-MCP-GATE-009`). Whether its `jti` was used before is the gateway's store to say.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from awooop.contracts.registries.errors import E_MCP_GATE_008, E_MCP_GATE_009
from awooop.mcp_gateway.domain.calls import ToolCall
from awooop.mcp_gateway.domain.gates import GateRefusal, Passed, refusal
from awooop.security.action_hash import action_hash
from awooop.security.approval_tokens import (
    ApprovalClaims,
    ApprovalTokenVerifier,
    InvalidApprovalToken,
    check_binding,
)
from awooop.security.canonical_json import NotCanonicalizable

NO_RING_REASON = (
    "the gateway holds no key ring to verify approval tokens (AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS)"
)
REPLAYED_REASON = "the approval token was already used: a token is accepted once"


@dataclass(frozen=True, slots=True)
class HeldCall:
    """A call waiting for its approval, as stored, with the `stream_seq` of its next event."""

    call: ToolCall
    next_seq: int


@dataclass(frozen=True, slots=True)
class Presented:
    """An approval presented for a held call (`run.tool_call_approved`)."""

    held: HeldCall
    approval_id: uuid.UUID
    token: str


def held_action_hash(call: ToolCall, policy_revision: str) -> str:
    """The action an approval of `call` must name under `policy_revision` (gate 3 refused
    every call whose arguments have no canonical form to hash)."""
    return action_hash(
        project_id=call.project_id,
        run_id=call.run_id,
        call_id=call.call_id,
        tool=call.tool,
        arguments=call.arguments,
        policy_revision=policy_revision,
    )


def check_token(
    verifier: ApprovalTokenVerifier | None,
    presented: Presented,
    passed: Passed,
    now: dt.datetime,
) -> ApprovalClaims | GateRefusal:
    """The token's claims when it allows exactly this call now, else gate 5's refusal
    (`E-MCP-GATE-008` or `009`, with the verifier's reason)."""
    if verifier is None:
        return refusal(E_MCP_GATE_008.code, NO_RING_REASON, passed.revisions)
    call = presented.held.call
    try:
        claims = verifier.verify(presented.token, now=now)
        if claims.approval_id != presented.approval_id:
            return refusal(
                E_MCP_GATE_009.code,
                "the token was granted by another approval than the one presenting it",
                passed.revisions,
            )
        check_binding(
            claims,
            project_id=call.project_id,
            run_id=call.run_id,
            call_id=call.call_id,
            action_hash=held_action_hash(call, passed.policy_ref),
        )
    except InvalidApprovalToken as invalid:
        return refusal(invalid.code, invalid.reason, passed.revisions)
    except NotCanonicalizable:
        reason = "the held call's arguments have no canonical form to bind a token to"
        return refusal(E_MCP_GATE_009.code, reason, passed.revisions)
    return claims


def replayed(passed: Passed) -> GateRefusal:
    """Gate 5's refusal of a token whose `jti` was accepted before."""
    return refusal(E_MCP_GATE_009.code, REPLAYED_REASON, passed.revisions)

"""Gate 5 for a batch's approved calls: each token verified, bound to its call as held
now, and accepted once, ever.

Inside the batch transaction: the tokens are verified and their bindings checked in
memory (`domain.approvals.check_token`); Redis may refuse a replay early (one pipelined
round trip, skipped while Redis is unset or down); then one `INSERT` into
`approval_tokens_used` decides: a `jti` already there is refused `E-MCP-GATE-009`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import asyncpg

from awooop.mcp_gateway.adapters.used_tokens import EarlyReplayCheck, TokenUse, record_uses
from awooop.mcp_gateway.domain.approvals import Presented, check_token, replayed
from awooop.mcp_gateway.domain.gates import GateRefusal, Passed
from awooop.security.approval_tokens import ApprovalTokenVerifier


class ApprovalGate:
    """Decides gate 5 for approved calls that passed gates 1 to 4 again."""

    def __init__(
        self,
        verifier: ApprovalTokenVerifier | None,
        early: EarlyReplayCheck,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._verifier = verifier
        self._early = early
        self._clock = clock

    async def decide(
        self, conn: asyncpg.Connection, approved: Sequence[tuple[Presented, Passed]]
    ) -> list[GateRefusal | None]:
        """One answer per approved call, in order: None lets it through, else the refusal.

        Every token let through has its `jti` recorded in this transaction."""
        if not approved:
            return []
        now = self._clock()
        answers: list[GateRefusal | None] = []
        uses: dict[int, TokenUse] = {}
        for index, (presented, passed) in enumerate(approved):
            checked = check_token(self._verifier, presented, passed, now)
            if isinstance(checked, GateRefusal):
                answers.append(checked)
                continue
            answers.append(None)
            uses[index] = TokenUse(
                checked.token_id,
                presented.held.call.call_id,
                presented.approval_id,
                checked.expires_at,
            )
        early = await self._early.replayed(list(uses.values()), now)
        asked = {i: use for i, use in uses.items() if use.token_id not in early}
        accepted = await record_uses(conn, list(asked.values()))
        for index, use in uses.items():
            if use.token_id in early or (index in asked and use.token_id not in accepted):
                answers[index] = replayed(approved[index][1])
        return answers

"""Charging a local step: its usage is known before it commits, so it is debited as
settled at once, in one statement, with no reservation row.

The statement is `budget_ledger.debit_statement` into `settled` instead of
`reserved`: rows locked in `scope_key` order (`COLLATE "C"`), an existing row taken
only when its limits still cover everything it holds plus the charge (evaluated on the
newest row version under its lock), a new row only when the charge fits from nothing.
The step's own transaction is what makes a retry safe: a step that did not commit
charged nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from awooop.runtime.adapters import budget_ledger
from awooop.runtime.adapters.budget_ledger import Refused
from awooop.runtime.domain.budget import ScopeLimit, Spent

_CHARGE = {
    guarded: budget_ledger.debit_statement("settled", guarded=guarded) for guarded in (True, False)
}

# Refusal path only: take back what the upsert added to the rows it holds locked.
_UNDO = """
UPDATE budget_ledger SET settled_tokens = settled_tokens - $2, settled_cost = settled_cost - $3
WHERE scope_key = ANY($1::text[])"""


@dataclass(frozen=True)
class Charged:
    """The tenant scopes' settled totals after the charge, for `kill_due`."""

    tenant_spent: dict[str, Spent]


async def charge(
    conn: asyncpg.Connection,
    project_id: str,
    scopes: Sequence[ScopeLimit],
    tokens: int,
    cost: Decimal,
) -> Charged | Refused:
    """Debit a local step's usage on every scope as settled, or on none (`Refused` names
    the first scope, in key order, that cannot fund it, or says the tenant is killed).
    `ValueError` on a negative amount."""
    if tokens < 0 or cost < 0:
        raise ValueError("a step never uses a negative amount")
    if not scopes:
        return Charged({})
    parts = [scope.parts for scope in scopes]
    rows = await conn.fetch(
        _CHARGE[budget_ledger.guards_switch(scopes)],
        project_id,
        [scope.key for scope in scopes],
        [p[1] for p in parts],
        [p[2] for p in parts],
        [p[3] for p in parts],
        [p[4] for p in parts],
        [scope.max_tokens for scope in scopes],
        [scope.max_cost for scope in scopes],
        tokens,
        cost,
    )
    if len(rows) < len(scopes):
        debited = [row["scope_key"] for row in rows]
        if debited:
            await conn.execute(_UNDO, debited, tokens, cost)
        if not rows and await budget_ledger.killed(conn, [project_id]):
            # A run started while the switch was being tripped: it spends nothing.
            return Refused("", "killed")
        refusing = next(s for s in sorted(scopes, key=lambda s: s.key) if s.key not in debited)
        used = await conn.fetchval(
            "SELECT reserved_tokens + settled_tokens FROM budget_ledger WHERE scope_key = $1",
            refusing.key,
        )
        over = refusing.max_tokens is not None and (used or 0) + tokens > refusing.max_tokens
        return Refused(refusing.key, "tokens" if over else "cost")
    return Charged(
        {
            row["scope_key"]: Spent(row["settled_tokens"], row["settled_cost"])
            for row in rows
            if row["scope"] == "tenant"
        }
    )

"""The budget ledger: reservations debited before a step, settled or released after it.

Every function runs inside the caller's transaction. Amounts only ever enter a ledger
row through one conditional upsert whose `WHERE` is evaluated on the newest row
version under its row lock, so concurrent reservations cannot both pass a limit; every
statement locks ledger rows in `scope_key` order (`COLLATE "C"`, the code-point order
`domain.budget` sorts by), so they never deadlock one another. A statement that locks a
tenant's kill switch row (`budget_kills`) locks it before any ledger row. A transaction
that calls more than one of these takes its locks per statement: one that debits two
tenants can deadlock with another debiting them in the other order, and reserving after
settling can deadlock across a period boundary (Postgres then aborts one, which
retries).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import asyncpg

from awooop.runtime.domain.budget import Remaining, ScopeLimit, Spent


@dataclass(frozen=True)
class Reservation:
    """A step's debit on its scopes; `state` is `reserved` unless a retry found it
    settled or released, and only a `reserved` one may fund a call."""

    run_id: uuid.UUID
    step: int
    scope_keys: tuple[str, ...]
    tokens: int
    cost: Decimal
    max_tokens: int
    state: str = "reserved"


@dataclass(frozen=True)
class Refused:
    """The first scope, in key order, that could not fund the reservation."""

    scope_key: str
    reason: Literal["tokens", "cost", "killed"]


@dataclass(frozen=True)
class Settled:
    """What a settle recorded (0 when the reservation was not `reserved`) and the settled
    totals of the reservation's tenant scopes afterwards, for `kill_due`."""

    tokens: int
    cost: Decimal
    tenant_spent: dict[str, Spent]
    recorded: bool


@dataclass(frozen=True)
class LedgerRow:
    """One scope as the ledger holds it."""

    scope_key: str
    project_id: str
    scope: str
    subject: str
    period: str
    period_key: str
    limit_tokens: int | None
    limit_cost: Decimal | None
    reserved_tokens: int
    reserved_cost: Decimal
    settled_tokens: int
    settled_cost: Decimal
    tripped_at: dt.datetime | None


async def remaining(conn: asyncpg.Connection, scopes: Sequence[ScopeLimit]) -> dict[str, Remaining]:
    """What each scope can still fund under its limits; a scope with no row has them whole."""
    if not scopes:
        return {}
    rows = await conn.fetch(
        "SELECT k.scope_key, coalesce(l.reserved_tokens + l.settled_tokens, 0) AS tokens, "
        " coalesce(l.reserved_cost + l.settled_cost, 0) AS cost "
        "FROM unnest($1::text[]) AS k(scope_key) LEFT JOIN budget_ledger l USING (scope_key)",
        [scope.key for scope in scopes],
    )
    used = {row["scope_key"]: (row["tokens"], row["cost"]) for row in rows}
    return {
        scope.key: Remaining(
            None if scope.max_tokens is None else max(0, scope.max_tokens - used[scope.key][0]),
            None
            if scope.max_cost is None
            else max(Decimal(0), scope.max_cost - used[scope.key][1]),
        )
        for scope in scopes
    }


async def held(conn: asyncpg.Connection, run_id: uuid.UUID, step: int) -> Reservation | None:
    """The reservation a step already made, in whatever state, or `None`."""
    row = await conn.fetchrow(
        "SELECT scope_keys, tokens, cost, max_tokens, state FROM budget_reservations "
        "WHERE run_id = $1 AND step = $2",
        run_id,
        step,
    )
    if row is None:
        return None
    keys, tokens, cost, max_tokens, state = row
    return Reservation(run_id, step, tuple(keys), tokens, cost, max_tokens, state)


# New rows are proposed only when the amount fits their limit from nothing; an existing
# row is updated only when its new limits cover what it holds plus the amount. Under
# READ COMMITTED, ON CONFLICT DO UPDATE waits for a concurrent writer's row lock and
# evaluates its WHERE on the version that writer committed, so two reservations can
# never both fit in the room left for one.
#
# The kill switch is read the same way when the debit names a tenant scope (`guarded`):
# `switch` upserts the tenant's `budget_kills` row (a no-op update of an existing one),
# which locks it until the debit's transaction ends and returns the newest committed
# version, not the statement's snapshot. A trip (`kill`) updates that row, so it waits
# for every transaction that debited the tenant before it, and the sweep that follows
# sees their runs; a debit that waited for the trip reads it and takes nothing. Every
# period's rows hang on the one switch row. Only a tenant scope's spend trips the
# switch, so a debit with none (a budget of agent and run limits) reads the switch in
# its snapshot and leaves the row alone: such debits of one tenant do not queue on it.
_SWITCH_LOCKED = """
WITH switch AS (
    INSERT INTO budget_kills AS s (project_id, killed, version) VALUES ($1, false, 0)
    ON CONFLICT (project_id) DO UPDATE SET killed = s.killed
    RETURNING s.killed
)"""
_SWITCH_LOCKED_OFF = "NOT (SELECT killed FROM switch)"
_SWITCH_READ_OFF = "NOT EXISTS (SELECT 1 FROM budget_kills WHERE project_id = $1 AND killed)"


def debit_statement(column: Literal["reserved", "settled"], *, guarded: bool) -> str:
    """The conditional upsert that adds an amount to `<column>_tokens`/`<column>_cost` of
    every scope passed ($1 project; $2..$8 the scopes' keys, parts and limits; $9 tokens,
    $10 cost), in key order, or to none that cannot fund it; a killed tenant's scopes
    take nothing. `guarded`, the tenant's switch row is locked until the transaction
    ends (see above). Returns each debited row's key, scope and settled totals."""
    tokens, cost = f"{column}_tokens", f"{column}_cost"
    return f"""{_SWITCH_LOCKED if guarded else ""}
INSERT INTO budget_ledger AS l (scope_key, project_id, scope, subject, period, period_key,
                                limit_tokens, limit_cost, {tokens}, {cost})
SELECT k.scope_key, $1, k.scope, k.subject, k.period, k.period_key, k.limit_tokens,
       k.limit_cost, $9::bigint, $10::numeric
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
            $8::numeric[]) AS k(scope_key, scope, subject, period, period_key, limit_tokens,
                                limit_cost)
WHERE (k.limit_tokens IS NULL OR $9 <= k.limit_tokens)
  AND (k.limit_cost IS NULL OR $10 <= k.limit_cost)
  AND {_SWITCH_LOCKED_OFF if guarded else _SWITCH_READ_OFF}
ORDER BY k.scope_key COLLATE "C"
ON CONFLICT (scope_key) DO UPDATE SET
    limit_tokens = EXCLUDED.limit_tokens, limit_cost = EXCLUDED.limit_cost,
    {tokens} = l.{tokens} + EXCLUDED.{tokens},
    {cost} = l.{cost} + EXCLUDED.{cost}
WHERE (EXCLUDED.limit_tokens IS NULL
       OR l.reserved_tokens + l.settled_tokens + EXCLUDED.{tokens} <= EXCLUDED.limit_tokens)
  AND (EXCLUDED.limit_cost IS NULL
       OR l.reserved_cost + l.settled_cost + EXCLUDED.{cost} <= EXCLUDED.limit_cost)
RETURNING l.scope_key, l.scope, l.settled_tokens, l.settled_cost"""


def guards_switch(scopes: Sequence[ScopeLimit]) -> bool:
    """A debit on `scopes` can trip the tenant's switch: it names a tenant scope."""
    return any(scope.scope == "tenant" for scope in scopes)


_RESERVE = {guarded: debit_statement("reserved", guarded=guarded) for guarded in (True, False)}

# Refusal path only: take back what the upsert added (rows it holds locked already), drop
# the reservation row, and read the refusing scope (locked too, when it exists).
_UNDO = """
WITH undone AS (
    UPDATE budget_ledger SET reserved_tokens = reserved_tokens - $2,
                             reserved_cost = reserved_cost - $3
    WHERE scope_key = ANY($1::text[]) RETURNING scope_key
), dropped AS (
    DELETE FROM budget_reservations WHERE run_id = $4 AND step = $5 RETURNING run_id
)
SELECT (SELECT reserved_tokens + settled_tokens FROM budget_ledger WHERE scope_key = $6)
       AS used_tokens"""


async def reserve(
    conn: asyncpg.Connection,
    project_id: str,
    run_id: uuid.UUID,
    step: int,
    scopes: Sequence[ScopeLimit],
    tokens: int,
    cost: Decimal,
    max_tokens: int,
) -> Reservation | Refused:
    """Debit `tokens` and `cost` on every scope (distinct keys; scopes without a limit are
    not passed), or on none: `Refused` names the first scope that cannot fund them, or
    says the tenant's kill switch is tripped. A step
    that already holds a reservation gets it back unchanged, with no second debit.
    `ValueError` on a negative amount."""
    if tokens < 0 or cost < 0:
        raise ValueError("a reservation is never negative")
    keys = [scope.key for scope in scopes]
    # The reservation row comes first: a concurrent retry of the same step waits on it
    # and then finds it, rather than debiting twice.
    fresh = await conn.fetchval(
        "INSERT INTO budget_reservations (run_id, step, project_id, scope_keys, tokens, cost, "
        " max_tokens, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'reserved') "
        "ON CONFLICT (run_id, step) DO NOTHING RETURNING true",
        run_id,
        step,
        project_id,
        keys,
        tokens,
        cost,
        max_tokens,
    )
    if not fresh:
        existing = await held(conn, run_id, step)
        assert existing is not None  # the conflict named it, and reservation rows are kept
        return existing
    if scopes:
        parts = [scope.parts for scope in scopes]
        taken = await conn.fetch(
            _RESERVE[guards_switch(scopes)],
            project_id,
            keys,
            [p[1] for p in parts],
            [p[2] for p in parts],
            [p[3] for p in parts],
            [p[4] for p in parts],
            [scope.max_tokens for scope in scopes],
            [scope.max_cost for scope in scopes],
            tokens,
            cost,
        )
        if not taken and await killed(conn, [project_id]):
            await conn.execute(
                "DELETE FROM budget_reservations WHERE run_id = $1 AND step = $2", run_id, step
            )
            return Refused("", "killed")  # a run started while the switch was tripped
        if len(taken) < len(scopes):
            debited = [row["scope_key"] for row in taken]
            refusing = next(s for s in sorted(scopes, key=lambda s: s.key) if s.key not in debited)
            used = await conn.fetchval(_UNDO, debited, tokens, cost, run_id, step, refusing.key)
            over = refusing.max_tokens is not None and (used or 0) + tokens > refusing.max_tokens
            return Refused(refusing.key, "tokens" if over else "cost")
    return Reservation(run_id, step, tuple(keys), tokens, cost, max_tokens)


# Moves the amounts of the reservations in `r` (project_id, scope_keys, tokens, cost,
# settled_tokens, settled_cost) out of `reserved` and into `settled`. A plain UPDATE
# would lock rows in whatever order its plan scans them; the materialized `locked`
# yields them in key order, each locked before the UPDATE can reach it, so the lock
# order is `_RESERVE`'s. Its one-time filter locks the tenants' switch rows first (those
# that exist, in project order), as a guarded debit does: a batch that settles a
# cancelled run's reservation and then charges a step of the same tenant takes the
# switch row before the ledger rows either way.
_MOVE = """
, switches AS MATERIALIZED (
    SELECT s.project_id FROM budget_kills s
    WHERE s.project_id IN (SELECT project_id FROM r)
    ORDER BY s.project_id COLLATE "C" FOR NO KEY UPDATE OF s
), debits AS (
    SELECT k AS scope_key, sum(r.tokens) AS tokens, sum(r.cost) AS cost,
           sum(r.settled_tokens) AS settled_tokens, sum(r.settled_cost) AS settled_cost
    FROM r CROSS JOIN LATERAL unnest(r.scope_keys) AS k GROUP BY k
), locked AS MATERIALIZED (
    SELECT l.scope_key FROM budget_ledger l JOIN debits d ON d.scope_key = l.scope_key
    WHERE (SELECT count(*) FROM switches) >= 0
    ORDER BY l.scope_key COLLATE "C" FOR UPDATE OF l
), moved AS (
    UPDATE budget_ledger l SET
        reserved_tokens = l.reserved_tokens - d.tokens,
        reserved_cost = l.reserved_cost - d.cost,
        settled_tokens = l.settled_tokens + d.settled_tokens,
        settled_cost = l.settled_cost + d.settled_cost
    FROM debits d JOIN locked USING (scope_key)
    WHERE l.scope_key = d.scope_key
    RETURNING l.scope_key, l.scope, l.settled_tokens, l.settled_cost
)"""


async def settle(
    conn: asyncpg.Connection, reservation: Reservation, tokens: int, cost: Decimal
) -> Settled:
    """Record what the step used, at most what it reserved, and free the rest. Only a
    `reserved` reservation settles: a second settle records nothing. `ValueError` on a
    negative amount."""
    if tokens < 0 or cost < 0:
        raise ValueError("a step never uses a negative amount")
    rows = await conn.fetch(
        "WITH r AS (UPDATE budget_reservations SET state = 'settled', "
        "  settled_tokens = least($3::bigint, tokens), settled_cost = least($4::numeric, cost) "
        "  WHERE run_id = $1 AND step = $2 AND state = 'reserved' "
        "  RETURNING project_id, scope_keys, tokens, cost, settled_tokens, settled_cost)"
        + _MOVE
        + " SELECT r.settled_tokens AS step_tokens, r.settled_cost AS step_cost, m.scope_key, "
        " m.scope, m.settled_tokens, m.settled_cost FROM r LEFT JOIN moved m ON true",
        reservation.run_id,
        reservation.step,
        tokens,
        cost,
    )
    if not rows:
        return Settled(0, Decimal(0), {}, recorded=False)
    spent = {
        row["scope_key"]: Spent(row["settled_tokens"], row["settled_cost"])
        for row in rows
        if row["scope"] == "tenant"
    }
    return Settled(rows[0]["step_tokens"], rows[0]["step_cost"], spent, recorded=True)


async def settle_in_full(conn: asyncpg.Connection, run_ids: Sequence[uuid.UUID]) -> int:
    """Settle every `reserved` reservation of `run_ids` at its whole amount (a cancelled
    run's call may have been made), in one statement; how many there were."""
    if not run_ids:
        return 0
    settled = await conn.fetchval(
        "WITH r AS (UPDATE budget_reservations SET state = 'settled', "
        "  settled_tokens = tokens, settled_cost = cost "
        "  WHERE run_id = ANY($1::uuid[]) AND state = 'reserved' "
        "  RETURNING project_id, scope_keys, tokens, cost, settled_tokens, settled_cost)"
        + _MOVE
        + " SELECT count(*) FROM r",
        list(run_ids),
    )
    return int(settled)


async def release(conn: asyncpg.Connection, run_id: uuid.UUID) -> int:
    """Free every `reserved` reservation of a run (it was cancelled); how many there were."""
    released = await conn.fetchval(
        "WITH r AS (UPDATE budget_reservations SET state = 'released' "
        "  WHERE run_id = $1 AND state = 'reserved' "
        "  RETURNING project_id, scope_keys, tokens, cost, 0::bigint AS settled_tokens, "
        "  0::numeric AS settled_cost)" + _MOVE + " SELECT count(*) FROM r",
        run_id,
    )
    return int(released)


async def trip(conn: asyncpg.Connection, scope: ScopeLimit) -> bool:
    """Mark a scope that can no longer fund a useful step; false when it was already.
    A scope with no row yet gets one, with nothing reserved."""
    project, kind, subject, period, period_key = scope.parts
    tripped = await conn.fetchval(
        "INSERT INTO budget_ledger AS l (scope_key, project_id, scope, subject, period, "
        " period_key, limit_tokens, limit_cost, tripped_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) "
        "ON CONFLICT (scope_key) DO UPDATE SET tripped_at = now() WHERE l.tripped_at IS NULL "
        "RETURNING true",
        scope.key,
        project,
        kind,
        subject,
        period,
        period_key,
        scope.max_tokens,
        scope.max_cost,
    )
    return bool(tripped)


async def kill(conn: asyncpg.Connection, project_id: str, reason: str) -> int | None:
    """Trip a tenant's kill switch; its new version, or `None` when it was tripped already."""
    version = await conn.fetchval(
        "INSERT INTO budget_kills AS k (project_id, killed, version, reason) "
        "VALUES ($1, true, 1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET killed = true, version = k.version + 1, "
        " reason = EXCLUDED.reason, changed_at = now() WHERE NOT k.killed "
        "RETURNING version",
        project_id,
        reason,
    )
    return None if version is None else int(version)


async def reset(conn: asyncpg.Connection, project_id: str) -> int | None:
    """Reset a tripped kill switch; its new version, or `None` when it was not tripped."""
    version = await conn.fetchval(
        "UPDATE budget_kills SET killed = false, version = version + 1, reason = NULL, "
        " changed_at = now() WHERE project_id = $1 AND killed RETURNING version",
        project_id,
    )
    return None if version is None else int(version)


async def killed(conn: asyncpg.Connection, project_ids: Sequence[str]) -> set[str]:
    """Which of `project_ids` have their kill switch tripped."""
    rows = await conn.fetch(
        "SELECT project_id FROM budget_kills WHERE killed AND project_id = ANY($1::text[])",
        list(project_ids),
    )
    return {row["project_id"] for row in rows}


async def scopes_of(conn: asyncpg.Connection, project_ids: Sequence[str] | None) -> list[LedgerRow]:
    """Every scope of `project_ids` (of every project with `None`), in key order."""
    query = (
        "SELECT scope_key, project_id, scope, subject, period, period_key, limit_tokens, "
        " limit_cost, reserved_tokens, reserved_cost, settled_tokens, settled_cost, tripped_at "
        "FROM budget_ledger "
    )
    order = 'ORDER BY scope_key COLLATE "C"'
    if project_ids is None:
        rows = await conn.fetch(query + order)
    else:
        rows = await conn.fetch(
            query + "WHERE project_id = ANY($1::text[]) " + order, list(project_ids)
        )
    return [LedgerRow(**dict(row)) for row in rows]


async def live_scopes(
    conn: asyncpg.Connection, project_id: str, limit: int = 100
) -> list[LedgerRow]:
    """The tenant and agent scopes of a project as they stand now (reserved included),
    newest period first; run scopes are left out (one per run)."""
    rows = await conn.fetch(
        "SELECT scope_key, project_id, scope, subject, period, period_key, limit_tokens, "
        " limit_cost, reserved_tokens, reserved_cost, settled_tokens, settled_cost, tripped_at "
        "FROM budget_ledger WHERE project_id = $1 AND scope <> 'run' "
        'ORDER BY period_key DESC, scope_key COLLATE "C" LIMIT $2',
        project_id,
        limit,
    )
    return [LedgerRow(**dict(row)) for row in rows]

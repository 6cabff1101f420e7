"""The budget ledger in the runtime's schema: reservations debit every scope or none,
settle at most what they reserved, are released with their run, and a retried step
reuses its reservation. Two OS processes racing 50 reservations for room for 10 get
exactly 10, and the ledger is never seen above its limit. The kill switch is versioned."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from awooop.contracts.families.budget import Budget, Price
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.runtime.adapters import budget_charges
from awooop.runtime.adapters import budget_ledger as ledger
from awooop.runtime.adapters.budget_ledger import Refused, Reservation
from awooop.runtime.app import spec
from awooop.runtime.budgeting import BudgetHold, StepBudget, Usage
from awooop.runtime.domain.budget import (
    Remaining,
    ScopeLimit,
    Spent,
    estimate,
    scopes_for,
    step_cost,
)
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

RACE = Path(__file__).resolve().parents[1] / "support" / "budget_race.py"
PRICE = Price(model="m", input_per_million="3", output_per_million="15")
NOW = dt.datetime.now(dt.UTC)


def _schema_only() -> ServiceSpec:
    """The runtime's schema and pool, nothing that consumes, schedules or relays."""
    return dataclasses.replace(
        spec(), processor=None, background=(), relay=False, reads_contracts=False
    )


def _body(*limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "family": "budget",
        "schema_version": 1,
        "limits": list(limits),
        "prices": [PRICE.model_dump()],
        "currency": "USD",
        "kill_switch_at": "0.9",
    }


BUDGET = Budget.model_validate(
    _body(
        {"scope": "tenant", "period": "daily", "max_tokens": 1_000, "max_cost": "1"},
        {"scope": "agent", "agent_id": "a", "period": "monthly", "max_cost": "0.01"},
        {"scope": "run", "period": "run", "max_tokens": 5_000},
    )
)


@pytest.fixture(scope="module")
async def runner(kafka_ready: StackUrls) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(_schema_only(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


@pytest.fixture
def pool(runner: ServiceRunner) -> asyncpg.Pool:
    assert runner.pool is not None
    return runner.pool


def _scopes(project: str, run_id: uuid.UUID, budget: Budget = BUDGET) -> tuple[ScopeLimit, ...]:
    return scopes_for(budget, project, "a", run_id, NOW)


async def _reserve(
    pool: asyncpg.Pool, project: str, run_id: uuid.UUID, step: int, prompt: int, out: int
) -> Reservation | Refused:
    tokens, cost = estimate(PRICE, prompt, out)
    async with pool.acquire() as conn, conn.transaction():
        return await ledger.reserve(
            conn, project, run_id, step, _scopes(project, run_id), tokens, cost, out
        )


async def _amounts(pool: asyncpg.Pool, project: str) -> dict[str, tuple[Any, ...]]:
    """Reserved and settled amounts by scope key."""
    async with pool.acquire() as conn:
        rows = await ledger.scopes_of(conn, [project])
    return {
        r.scope_key: (r.reserved_tokens, r.reserved_cost, r.settled_tokens, r.settled_cost)
        for r in rows
    }


async def _reservations(pool: asyncpg.Pool, project: str) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT step, state, tokens, settled_tokens, settled_cost FROM budget_reservations "
        "WHERE project_id = $1 ORDER BY run_id, step",
        project,
    )
    return [tuple(r) for r in rows]


async def test_reserve_settle_and_release_move_amounts_between_columns(
    pool: asyncpg.Pool,
) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    tenant, agent, run = (s.key for s in sorted(_scopes(project, run_id), key=_kind))
    first = await _reserve(pool, project, run_id, 1, 100, 200)
    cost = step_cost(PRICE, 100, 200)
    assert first == Reservation(run_id, 1, tuple(sorted((tenant, agent, run))), 300, cost, 200)
    assert await _amounts(pool, project) == dict.fromkeys((tenant, agent, run), (300, cost, 0, 0))
    async with pool.acquire() as conn:
        left = await ledger.remaining(conn, _scopes(project, run_id))
    assert left == {
        tenant: Remaining(700, Decimal(1) - cost),
        agent: Remaining(None, Decimal("0.01") - cost),
        run: Remaining(4_700, None),
    }

    used = step_cost(PRICE, 100, 50)
    async with pool.acquire() as conn, conn.transaction():
        settled = await ledger.settle(conn, first, 150, used)
    assert settled == ledger.Settled(150, used, {tenant: Spent(150, used)}, recorded=True)
    assert await _amounts(pool, project) == dict.fromkeys((tenant, agent, run), (0, 0, 150, used))

    second = await _reserve(pool, project, run_id, 2, 100, 100)
    assert isinstance(second, Reservation)
    async with pool.acquire() as conn, conn.transaction():
        assert await ledger.release(conn, run_id) == 1
        assert await ledger.release(conn, run_id) == 0
        # A released reservation no longer settles.
        assert not (await ledger.settle(conn, second, 10, Decimal(0))).recorded
    assert await _amounts(pool, project) == dict.fromkeys((tenant, agent, run), (0, 0, 150, used))
    assert await _reservations(pool, project) == [
        (1, "settled", 300, 150, used),
        (2, "released", 200, None, None),
    ]


def _kind(scope: ScopeLimit) -> int:
    return ("tenant", "agent", "run").index(scope.scope)


async def test_a_retried_step_reuses_its_reservation(pool: asyncpg.Pool) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    first = await _reserve(pool, project, run_id, 1, 100, 200)
    again = await _reserve(pool, project, run_id, 1, 400, 400)
    assert again == first
    async with pool.acquire() as conn:
        assert await ledger.held(conn, run_id, 1) == first
        assert await ledger.held(conn, run_id, 2) is None
    assert {a[0] for a in (await _amounts(pool, project)).values()} == {300}
    async with pool.acquire() as conn, conn.transaction():
        assert isinstance(first, Reservation)
        await ledger.settle(conn, first, 300, Decimal(0))
    # A retry after the settle finds the settled reservation: it funds nothing more.
    settled = await _reserve(pool, project, run_id, 1, 100, 200)
    assert isinstance(settled, Reservation)
    assert settled.state == "settled"
    assert {a[:3] for a in (await _amounts(pool, project)).values()} == {(0, 0, 300)}


async def test_a_refused_reservation_leaves_every_scope_unchanged(pool: asyncpg.Pool) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    assert isinstance(await _reserve(pool, project, run_id, 1, 400, 500), Reservation)
    before = await _amounts(pool, project)
    tenant = next(s.key for s in _scopes(project, run_id) if s.scope == "tenant")
    agent = next(s.key for s in _scopes(project, run_id) if s.scope == "agent")
    # 101 more tokens fit the run and the agent (which sort first) but not the tenant.
    assert await _reserve(pool, project, run_id, 2, 100, 1) == Refused(tenant, "tokens")
    assert await _amounts(pool, project) == before
    # A new run's scope is debited and taken back too, and the agent refuses money.
    other = uuid.uuid4()
    assert await _reserve(pool, project, other, 1, 1, 99) == Refused(agent, "cost")
    after = await _amounts(pool, project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert after[f"{project}|run|{other}|run|"] == (0, 0, 0, 0)
    # More than a limit holds from nothing: no row is even proposed.
    third = uuid.uuid4()
    assert await _reserve(pool, project, third, 1, 100, 6_000) == Refused(agent, "cost")
    assert f"{project}|run|{third}|run|" not in await _amounts(pool, project)
    assert [r[:2] for r in await _reservations(pool, project)] == [(1, "reserved")]


async def test_settle_never_records_more_than_was_reserved(pool: asyncpg.Pool) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    reservation = await _reserve(pool, project, run_id, 1, 100, 100)
    assert isinstance(reservation, Reservation)
    async with pool.acquire() as conn, conn.transaction():
        settled = await ledger.settle(conn, reservation, 10_000, Decimal(9))
        assert (settled.tokens, settled.cost) == (200, reservation.cost)
        assert not (await ledger.settle(conn, reservation, 10, Decimal(0))).recorded
    assert set((await _amounts(pool, project)).values()) == {(0, 0, 200, reservation.cost)}


async def test_a_step_under_no_limit_reserves_and_settles_nothing_in_the_ledger(
    pool: asyncpg.Pool,
) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        reservation = await ledger.reserve(conn, project, run_id, 1, (), 10, Decimal(0), 5)
        assert reservation == Reservation(run_id, 1, (), 10, Decimal(0), 5)
        settled = await ledger.settle(conn, reservation, 7, Decimal(0))
    assert settled == ledger.Settled(7, Decimal(0), {}, recorded=True)
    assert await _amounts(pool, project) == {}


async def test_concurrent_settles_and_reservations_neither_deadlock_nor_drift(
    pool: asyncpg.Pool,
) -> None:
    """Settles lock their rows in key order too: 20 steps reserving and settling on the
    same agent and tenant rows at once, each holding its locks a moment, all finish."""
    project = unique("bud")

    async def step() -> None:
        run_id = uuid.uuid4()
        got = await _reserve(pool, project, run_id, 1, 10, 20)
        assert isinstance(got, Reservation)
        await asyncio.sleep(0.001)
        async with pool.acquire() as conn, conn.transaction():
            await ledger.settle(conn, got, 25, Decimal(0))
            await asyncio.sleep(0.002)

    await asyncio.gather(*(step() for _ in range(20)))
    shared = {k: v for k, v in (await _amounts(pool, project)).items() if "|run|" not in k}
    assert set(shared.values()) == {(0, 0, 500, 0)}
    assert len(shared) == 2


async def test_a_scope_trips_once(pool: asyncpg.Pool) -> None:
    project, run_id = unique("bud"), uuid.uuid4()
    scope = _scopes(project, run_id)[0]
    async with pool.acquire() as conn:
        assert await ledger.trip(conn, scope)
        assert not await ledger.trip(conn, scope)
        (row,) = await ledger.scopes_of(conn, [project])
        everyone = await ledger.scopes_of(conn, None)
    assert (row.scope_key, row.limit_tokens, row.reserved_tokens) == (scope.key, None, 0)
    assert row.tripped_at is not None
    assert row in everyone


async def test_the_kill_switch_is_versioned(pool: asyncpg.Pool) -> None:
    project, other = unique("bud"), unique("bud")
    async with pool.acquire() as conn:
        assert await ledger.reset(conn, project) is None
        assert await ledger.kill(conn, project, "tenant budget at 95%") == 1
        assert await ledger.kill(conn, project, "again") is None
        assert await ledger.killed(conn, [project, other]) == {project}
        assert await ledger.reset(conn, project) == 2
        assert await ledger.reset(conn, project) is None
        assert await ledger.killed(conn, [project, other]) == set()
        assert await ledger.kill(conn, project, "operator") == 3
        reason = await conn.fetchval(
            "SELECT reason FROM budget_kills WHERE project_id = $1", project
        )
    assert reason == "operator"


async def _child(order: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(RACE),
        json.dumps(order),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _outcome(child: asyncio.subprocess.Process) -> dict[str, Any]:
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_two_processes_racing_for_room_for_ten_get_exactly_ten(
    runner: ServiceRunner, tmp_path: Path
) -> None:
    """25 reservations from each of two processes, released by one barrier, each holding
    its row locks 20 ms: a read-then-write would let stale reads through and overdraw."""
    assert runner.pool is not None
    pool, project, per_step = runner.pool, unique("race"), 100
    body = _body(
        {"scope": "tenant", "period": "daily", "max_tokens": 10 * per_step},
        {"scope": "agent", "agent_id": "a", "period": "daily", "max_tokens": 10**9},
        {"scope": "run", "period": "run", "max_tokens": 10**6},
    )
    budget = Budget.model_validate(body)
    tenant = next(s for s in _scopes(project, uuid.uuid4(), budget) if s.scope == "tenant")
    agent = next(s for s in _scopes(project, uuid.uuid4(), budget) if s.scope == "agent")
    go = tmp_path / "go"
    order = {
        "dsn": runner.settings.service_database_url(runner.spec.service),
        "project": project,
        "agent": "a",
        "budget": body,
        "now": NOW.isoformat(),
        "tokens": per_step,
        "count": 25,
        "hold_seconds": 0.02,
        "go": str(go),
    }
    readies = [tmp_path / f"ready-{n}" for n in range(2)]
    children = [await _child({**order, "ready": str(ready)}) for ready in readies]
    try:
        await wait_for(
            lambda: _all_exist(readies), within=30, message="both racers to open their pools"
        )
        seen: list[int] = []
        watching = asyncio.Event()
        watch = asyncio.create_task(_watch(pool, tenant.key, seen, watching))
        go.touch()
        results = [await _outcome(child) for child in children]
        watching.set()
        await watch
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()

    assert [r["errors"] for r in results] == [[], []]
    tally: dict[str, int] = {}
    for result in results:
        for outcome, n in result["outcomes"].items():
            tally[outcome] = tally.get(outcome, 0) + n
    assert tally == {"reserved": 10, "refused:tenant:tokens": 40}
    # The two processes' reservations overlapped in time: it was a race.
    assert max(r["began"] for r in results) < min(r["ended"] for r in results)
    assert seen, "the ledger was never read during the race"
    assert max(seen) <= 10 * per_step
    amounts = await _amounts(pool, project)
    assert amounts[tenant.key][0] == 10 * per_step
    # The refused 40 took back what they had debited on the agent scope before refusal.
    assert amounts[agent.key][0] == 10 * per_step
    assert len(await _reservations(pool, project)) == 10


async def _all_exist(paths: list[Path]) -> bool:
    return all(path.exists() for path in paths)


async def _watch(pool: asyncpg.Pool, key: str, seen: list[int], done: asyncio.Event) -> None:
    """Read the tenant row's debits as fast as one connection can until `done`."""
    async with pool.acquire() as conn:
        while not done.is_set():
            used = await conn.fetchval(
                "SELECT reserved_tokens + settled_tokens FROM budget_ledger WHERE scope_key = $1",
                key,
            )
            if used is not None:
                seen.append(int(used))
            await asyncio.sleep(0.001)


async def test_a_killed_tenant_can_neither_reserve_nor_charge(pool: asyncpg.Pool) -> None:
    """A run started while its tenant's switch was being tripped spends nothing: the
    debit itself reads the switch, in the same statement."""
    project, run_id = unique("bk"), uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        assert await ledger.kill(conn, project, "spent") == 1
        refused = await ledger.reserve(
            conn, project, run_id, 0, _scopes(project, run_id), 10, Decimal("0.0001"), 5
        )
        charged = await budget_charges.charge(
            conn, project, _scopes(project, run_id), 10, Decimal("0.0001")
        )
    assert refused == Refused("", "killed")
    assert charged == Refused("", "killed")
    assert await _amounts(pool, project) == {}
    assert await _reservations(pool, project) == []


async def _blocked(pool: asyncpg.Pool, conn: asyncpg.Connection, task: asyncio.Task[Any]) -> bool:
    """Whether `task`, working on `conn`, waits for a lock (rather than having finished)."""
    pid = conn.get_server_pid()

    async def settled() -> bool:
        waiting = await pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
        return task.done() or bool(waiting)

    await wait_for(settled, within=10, message="the statement to finish or to wait")
    return not task.done()


async def test_a_trip_waits_for_every_open_transaction_that_debited_its_tenant(
    pool: asyncpg.Pool,
) -> None:
    """The sweep after a trip must see the runs of every transaction that spent before
    it: a trip waits until such a transaction ends."""
    project, run_id = unique("bk"), uuid.uuid4()
    async with pool.acquire() as opened, pool.acquire() as tripper:
        debit = opened.transaction()
        await debit.start()
        try:
            charged = await budget_charges.charge(
                opened, project, _scopes(project, run_id), 10, Decimal("0.0001")
            )
            assert isinstance(charged, budget_charges.Charged)

            async def trip() -> int | None:
                async with tripper.transaction():
                    return await ledger.kill(tripper, project, "spent")

            tripping = asyncio.create_task(trip())
            assert await _blocked(pool, tripper, tripping)
        finally:
            await debit.commit()
        assert await tripping == 1
    spent = await _amounts(pool, project)
    assert set(spent) == {scope.key for scope in _scopes(project, run_id)}
    assert all(settled == 10 for _, _, settled, _ in spent.values())


async def test_a_debit_begun_before_a_trip_committed_takes_nothing_once_it_did(
    pool: asyncpg.Pool,
) -> None:
    """A debit whose statement began while the trip was not committed yet (here on the
    next day's rows, which no earlier debit holds) waits for the trip, then reads it."""
    project, run_id = unique("bk"), uuid.uuid4()
    tomorrow = scopes_for(BUDGET, project, "a", run_id, NOW + dt.timedelta(days=1))
    async with pool.acquire() as tripper, pool.acquire() as late:
        trip = tripper.transaction()
        await trip.start()
        try:
            assert await ledger.kill(tripper, project, "spent") == 1

            async def charge_late() -> budget_charges.Charged | Refused:
                async with late.transaction():
                    return await budget_charges.charge(
                        late, project, tomorrow, 10, Decimal("0.0001")
                    )

            charging = asyncio.create_task(charge_late())
            assert await _blocked(pool, late, charging)
        finally:
            await trip.commit()
        assert await charging == Refused("", "killed")
    assert await _amounts(pool, project) == {}


async def test_a_step_reserved_before_midnight_and_settled_after_it_still_trips_the_switch(
    pool: asyncpg.Pool,
) -> None:
    """The reservation debited yesterday's tenant row; the settle that leaves that row
    past the kill share is judged by it, not by today's row (which holds nothing)."""
    project, run_id = unique("bm"), uuid.uuid4()
    evening = dt.datetime(2026, 12, 7, 23, 59, 59, tzinfo=dt.UTC)
    scopes = scopes_for(BUDGET, project, "a", run_id, evening)
    async with pool.acquire() as conn, conn.transaction():
        reserved = await ledger.reserve(conn, project, run_id, 1, scopes, 950, Decimal("0.005"), 50)
    assert isinstance(reserved, Reservation)
    found = SimpleNamespace(document=BUDGET, ref="tenant-budget@1:0123456789ab")
    budget = StepBudget(SimpleNamespace(view=SimpleNamespace(budget=lambda _: found)))  # type: ignore[arg-type]
    run = SimpleNamespace(project_id=project, agent_id="a", run_id=run_id, step=1)
    plan = SimpleNamespace(run=run, number=1)
    budget.begin_step()
    async with pool.acquire() as conn, conn.transaction():
        await budget.settle(
            conn,
            plan,  # type: ignore[arg-type]
            BudgetHold(50, reserved, PRICE),
            Usage("m", 900, 50),
            latency_ms=5,
            now=evening + dt.timedelta(seconds=2),
        )
    assert budget.crossed() == [(project, found.ref)]


async def test_settling_a_cancelled_runs_hold_then_charging_does_not_deadlock_with_a_charge(
    pool: asyncpg.Pool,
) -> None:
    """A batch settles a cancelled run's reservation, then charges a step of the same
    tenant; a step elsewhere charges the tenant between the two. Both statements of the
    batch take the tenant's switch row before its ledger rows, as the step's does, so
    the step waits for the batch instead of deadlocking with it."""
    project, cancelled = unique("bd"), uuid.uuid4()
    tokens, cost = estimate(PRICE, 10, 10)
    async with pool.acquire() as conn, conn.transaction():
        held = await ledger.reserve(
            conn, project, cancelled, 1, _scopes(project, cancelled), tokens, cost, 10
        )
    assert isinstance(held, Reservation)
    here, elsewhere = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as batch, pool.acquire() as step:
        open_batch = batch.transaction()
        await open_batch.start()
        try:
            assert await ledger.settle_in_full(batch, [cancelled]) == 1

            async def charge_elsewhere() -> budget_charges.Charged | Refused:
                async with step.transaction():
                    return await budget_charges.charge(
                        step, project, _scopes(project, elsewhere), 5, Decimal("0.00001")
                    )

            charging = asyncio.create_task(charge_elsewhere())
            assert await _blocked(pool, step, charging)
            charged = await budget_charges.charge(
                batch, project, _scopes(project, here), 5, Decimal("0.00001")
            )
            assert isinstance(charged, budget_charges.Charged)
        finally:
            await open_batch.commit()
        assert isinstance(await charging, budget_charges.Charged)


async def test_a_debit_with_no_tenant_scope_reads_the_switch_and_leaves_its_row_alone(
    pool: asyncpg.Pool,
) -> None:
    """Only a tenant scope's spend trips the switch: a budget of run limits alone still
    spends nothing once its tenant is killed, and its open debits hold no trip back."""
    runs_only = Budget.model_validate(_body({"scope": "run", "period": "run", "max_tokens": 50}))
    project, run_id = unique("bn"), uuid.uuid4()
    scopes = scopes_for(runs_only, project, "a", run_id, NOW)
    async with pool.acquire() as opened, pool.acquire() as tripper:
        async with opened.transaction():
            charged = await budget_charges.charge(opened, project, scopes, 5, Decimal(0))
            assert isinstance(charged, budget_charges.Charged)

            async def trip() -> int | None:
                async with tripper.transaction():
                    return await ledger.kill(tripper, project, "operator")

            tripping = asyncio.create_task(trip())
            blocked = await _blocked(pool, tripper, tripping)
        assert not blocked
        assert await tripping == 1
        async with opened.transaction():
            refused = await budget_charges.charge(opened, project, scopes, 5, Decimal(0))
    assert refused == Refused("", "killed")

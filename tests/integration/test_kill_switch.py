"""A tenant's kill switch on a running runtime: tripped, it cancels every active run of
that tenant (one `run.cancelled` each, `E-BUDGET-KILLED`) and none of another tenant's,
settles their outstanding reservations in full, and says `budget.tenant_killed` on the
budget topic; a second trip writes nothing; a reset says `budget.tenant_reset`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from awooop.contracts.families.budget import Budget
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.registries.errors import E_BUDGET_KILLED
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceRunner
from awooop.runtime import kill_switch
from awooop.runtime.adapters import budget_ledger, runs
from awooop.runtime.adapters.budget_ledger import Reservation
from awooop.runtime.app import spec, utc_now
from awooop.runtime.domain.budget import scopes_for
from awooop.runtime.domain.replay import replay_run
from support.contracts import demo_documents, lifecycle, produce, publish_contracts, refs_of
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for
from support.runtime_inputs import message, send
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

BUDGET = Budget.model_validate(
    {
        "family": "budget",
        "schema_version": 1,
        "limits": [
            {"scope": "tenant", "period": "daily", "max_tokens": 100_000, "max_cost": "100"},
            {"scope": "run", "period": "run", "max_tokens": 5_000},
        ],
        "prices": [{"model": "m", "input_per_million": "3", "output_per_million": "15"}],
        "currency": "USD",
        "kill_switch_at": "0.9",
    }
)
REVISION = "tenant-budget@1:0123456789ab"
CODEC = EnvelopeCodec()


@pytest.fixture(scope="module")
async def runner(kafka_ready: StackUrls) -> AsyncIterator[ServiceRunner]:
    """The whole runtime (consumer, steps, relay); no gateway answers its tool calls, so
    its demo runs stay `waiting_tool`, active."""
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def _start_runs(
    urls: StackUrls, runner: ServiceRunner, project: str, count: int
) -> list[uuid.UUID]:
    """`count` demo runs of `project`, each its own subject, once the runtime reads the
    project's contracts."""
    refs = await publish_contracts(urls.settings(), project, demo_documents(project))
    assert runner.contracts is not None
    view = runner.contracts

    def applied() -> bool:
        return view.view.refs().get((project, "demo-agent")) == refs["demo-agent"]

    await wait_for(applied, within=20, message="the runtime to read the contracts")
    ids = []
    for n in range(count):
        sent = message(project, str(n), "is checkout healthy?")
        key = f"{project}:{sent.payload.platform_subject_id}"
        await send(urls, Topics.INGRESS_EVENTS.name, key, sent)
        ids.append(sent.event_id)
    return ids


async def _states(pool: asyncpg.Pool, run_ids: list[uuid.UUID]) -> list[str]:
    rows = await pool.fetch(
        "SELECT state FROM runs WHERE run_id = ANY($1::uuid[]) ORDER BY run_id", run_ids
    )
    return [row["state"] for row in rows] if len(rows) == len(run_ids) else []


async def _events(pool: asyncpg.Pool, stream_id: str) -> list[Envelope[Any]]:
    rows = await pool.fetch(
        "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq", stream_id
    )
    return [CODEC.decode(bytes(row["data"])) for row in rows]


async def _reserve_mid_call(pool: asyncpg.Pool, project: str, run_id: uuid.UUID) -> Reservation:
    """A step of the run whose provider call is under way: its reservation is open."""
    scopes = scopes_for(BUDGET, project, "demo-agent", run_id, dt.datetime.now(dt.UTC))
    async with pool.acquire() as conn, conn.transaction():
        held = await budget_ledger.reserve(
            conn, project, run_id, 9, scopes, 120, Decimal("0.25"), 100
        )
    assert isinstance(held, Reservation)
    return held


async def _kill(pool: asyncpg.Pool, project: str) -> kill_switch.Kill:
    return await kill_switch.kill_tenant(
        pool,
        project,
        reason="the tenant spent 90% of its daily budget",
        budget_revision=REVISION,
        now=utc_now(),
        service="runtime",
    )


async def test_a_kill_cancels_every_active_run_of_its_tenant_and_no_other(
    kafka_ready: StackUrls, runner: ServiceRunner
) -> None:
    assert runner.pool is not None
    assert runner.relay is not None
    pool = runner.pool
    killed, spared = unique("kka"), unique("kkb")
    doomed = await _start_runs(kafka_ready, runner, killed, 3)
    others = await _start_runs(kafka_ready, runner, spared, 2)

    async def all_waiting() -> bool:
        return await _states(pool, doomed + others) == ["waiting_tool"] * 5

    await wait_for(all_waiting, within=30, message="every run to wait for its tool")
    held = [await _reserve_mid_call(pool, killed, run_id) for run_id in doomed]
    await _reserve_mid_call(pool, spared, others[0])
    epochs = {
        row["run_id"]: row["lease_epoch"]
        for row in await pool.fetch(
            "SELECT run_id, lease_epoch FROM runs WHERE run_id = ANY($1::uuid[])", doomed
        )
    }

    assert await _kill(pool, killed) == kill_switch.Kill(tripped=True, cancelled=3)
    runner.relay.wake()

    assert await _states(pool, doomed) == ["cancelled"] * 3
    assert await _states(pool, others) == ["waiting_tool"] * 2
    leases = await pool.fetch(
        "SELECT run_id, lease_owner, lease_epoch, lease_until, wake_at FROM runs "
        "WHERE run_id = ANY($1::uuid[])",
        doomed,
    )
    for lease in leases:
        assert lease["lease_epoch"] == epochs[lease["run_id"]] + 1
        assert (lease["lease_owner"], lease["lease_until"], lease["wake_at"]) == (None,) * 3
    for row in await pool.fetch(
        f"SELECT {runs.COLUMNS} FROM runs WHERE run_id = ANY($1::uuid[])", doomed
    ):
        stream = await _events(pool, str(row["run_id"]))
        assert stream[-1].event_type == "run.cancelled"
        assert stream[-1].payload.code == E_BUDGET_KILLED.code
        assert stream[-1].payload.actor == "service:runtime"
        assert replay_run(stream) == runs.run_of(row)  # the stream, folded again, is the row
    for run_id in others:
        types = [e.event_type for e in await _events(pool, str(run_id))]
        assert "run.cancelled" not in types

    # Every open reservation of the cancelled runs is settled at what it reserved; the
    # spared tenant's stays open.
    settled = await pool.fetch(
        "SELECT state, settled_tokens, settled_cost FROM budget_reservations "
        "WHERE run_id = ANY($1::uuid[]) AND step = 9",
        doomed,
    )
    assert sorted(tuple(r) for r in settled) == [("settled", 120, Decimal("0.25"))] * 3
    async with pool.acquire() as conn:
        ledger = {row.scope_key: row for row in await budget_ledger.scopes_of(conn, [killed])}
        spared_rows = await budget_ledger.scopes_of(conn, [spared])
    (tenant,) = [row for row in ledger.values() if row.scope == "tenant"]
    assert (tenant.reserved_tokens, tenant.reserved_cost) == (0, 0)
    assert (tenant.settled_tokens, tenant.settled_cost) == (360, Decimal("0.75"))
    assert all(row.reserved_tokens == 0 for row in ledger.values())
    assert {row.scope_key for row in ledger.values()} >= set(held[0].scope_keys)
    assert all(row.reserved_tokens == 120 for row in spared_rows)
    open_hold = await pool.fetchval(
        "SELECT state FROM budget_reservations WHERE run_id = $1 AND step = 9", others[0]
    )
    assert open_hold == "reserved"

    # Published: one run.cancelled per run of the killed tenant, and the tenant_killed.
    async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
        wanted = {str(run_id) for run_id in doomed}

        def cancelled(seen: list[Envelope[Any]]) -> list[Envelope[Any]]:
            return [
                e
                for e in seen
                if e.event_type == "run.cancelled" and e.correlation_id in wanted | _ids(others)
            ]

        seen = await reader.until(lambda s: len(cancelled(s)) >= 3)
    assert sorted(e.correlation_id for e in cancelled(seen)) == sorted(wanted)
    assert {e.payload.code for e in cancelled(seen)} == {E_BUDGET_KILLED.code}
    async with TopicReader(kafka_ready.kafka, Topics.BUDGET_EVENTS.name) as budget_topic:
        seen = await budget_topic.until(
            lambda s: any(e.project_id == killed for e in s),
        )
    (tripped,) = [e for e in seen if e.project_id == killed]
    assert tripped.event_type == "budget.tenant_killed"
    assert (tripped.payload.code, tripped.payload.budget_revision) == (
        E_BUDGET_KILLED.code,
        REVISION,
    )
    assert (tripped.stream_id, tripped.stream_seq) == (f"budget:{killed}", 1)

    # Tripped already, with no run of the tenant active: a second kill writes nothing.
    before = await pool.fetchval("SELECT count(*) FROM events")
    assert await _kill(pool, killed) == kill_switch.Kill(tripped=False, cancelled=0)
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_a_kill_that_finds_the_switch_tripped_still_cancels_the_tenants_active_runs(
    runner: ServiceRunner,
) -> None:
    """A run the kill's sweep could not see: a batch that read the switch before the trip
    and charged nothing inserted it, and committed after the sweep read the runs (or a
    kill that crashed between its two transactions left it active). The next kill call
    finds the switch tripped: it says no second `budget.tenant_killed`, and it cancels
    the run."""
    assert runner.pool is not None
    pool = runner.pool
    project = unique("kkl")
    run_id = uuid.uuid4()
    async with pool.acquire() as conn:
        batch = conn.transaction()
        await batch.start()
        try:
            await conn.execute(
                "INSERT INTO runs (run_id, project_id, platform_subject_id, agent_id, "
                " channel_type, chat_id, mode, revision, trace_id, state, version, "
                " last_event_id, max_attempts, timeout_at) "
                "VALUES ($1, $2, $3, 'demo-agent', 'telegram', '42', 'shadow', $4, $5, "
                " 'pending', 0, $1, 3, now() + interval '10 minutes')",
                run_id,
                project,
                f"{project}:telegram:42",
                REVISION,
                new_trace_id(),
            )
            # The kill, on connections of its own, reads the runs the batch has not
            # committed yet.
            assert await _kill(pool, project) == kill_switch.Kill(tripped=True, cancelled=0)
        except BaseException:
            await batch.rollback()
            raise
        await batch.commit()
    assert await _states(pool, [run_id]) == ["pending"]

    assert await _kill(pool, project) == kill_switch.Kill(tripped=False, cancelled=1)
    assert await _states(pool, [run_id]) == ["cancelled"]
    (cancelled,) = await _events(pool, str(run_id))
    assert (cancelled.event_type, cancelled.payload.code) == ("run.cancelled", E_BUDGET_KILLED.code)
    said = [e.event_type for e in await _events(pool, f"budget:{project}")]
    assert said == ["budget.tenant_killed"]


def _ids(run_ids: list[uuid.UUID]) -> set[str]:
    return {str(run_id) for run_id in run_ids}


async def test_a_reset_says_so_on_the_budget_topic_and_only_a_tripped_switch_resets(
    kafka_ready: StackUrls, runner: ServiceRunner
) -> None:
    assert runner.pool is not None
    assert runner.relay is not None
    pool = runner.pool
    project = unique("kkr")

    async def reset() -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await kill_switch.reset_tenant(
                conn,
                project,
                actor="operator:alice",
                reason="budget raised",
                now=utc_now(),
                service="runtime",
            )

    assert await reset() is False  # never tripped: nothing to reset, nothing written
    assert await _events(pool, f"budget:{project}") == []
    # No active runs: still tripped and said.
    assert await _kill(pool, project) == kill_switch.Kill(tripped=True, cancelled=0)
    assert await reset() is True
    assert await reset() is False
    runner.relay.wake()
    stream = await _events(pool, f"budget:{project}")
    assert [(e.event_type, e.stream_seq) for e in stream] == [
        ("budget.tenant_killed", 1),
        ("budget.tenant_reset", 2),
    ]
    async with pool.acquire() as conn:
        assert await budget_ledger.killed(conn, [project]) == set()
    async with TopicReader(kafka_ready.kafka, Topics.BUDGET_EVENTS.name) as reader:
        seen = await reader.until(
            lambda s: any(
                e.event_type == "budget.tenant_reset" and e.project_id == project for e in s
            )
        )
    (done,) = [e for e in seen if e.event_type == "budget.tenant_reset" and e.project_id == project]
    assert (done.payload.actor, done.payload.reason, done.actor) == (
        "operator:alice",
        "budget raised",
        "operator:alice",
    )


async def test_steps_that_spend_the_tenant_trip_its_switch_and_a_reset_lets_runs_start(
    kafka_ready: StackUrls, runner: ServiceRunner
) -> None:
    """No direct call: the scripted steps' own charges reach the kill share of a small
    token budget; the step that reaches it trips the switch, which cancels every active
    run of the tenant (none of another's); a message while killed starts no run; a
    reset lets the next one run."""
    spent, other = unique("kq"), unique("kr")
    small = {
        "family": "budget",
        "schema_version": 1,
        "limits": [{"scope": "tenant", "period": "daily", "max_tokens": 200}],
        "prices": [],
        "currency": "USD",
        "kill_switch_at": "0.5",
    }
    settings = kafka_ready.settings()
    await publish_contracts(settings, spent, {**demo_documents(spent), "budget": small})
    others = await _start_runs(kafka_ready, runner, other, 1)
    assert runner.contracts is not None
    assert runner.pool is not None
    view, pool = runner.contracts, runner.pool
    await wait_for(
        lambda: view.view.budget(spent) is not None, within=20, message="the budget read"
    )
    ids = []
    async with TopicReader(kafka_ready.kafka, Topics.BUDGET_EVENTS.name) as budget_events:
        for n in range(8):  # each first step charges some 30 tokens: 100 trip the switch
            sent = message(spent, str(n), "is checkout healthy?")
            await send(kafka_ready, Topics.INGRESS_EVENTS.name, f"{spent}:{n}", sent)
            ids.append(sent.event_id)
        seen = await budget_events.until(lambda s: any(e.project_id == spent for e in s), within=30)
    (killed,) = [e for e in seen if e.project_id == spent]
    assert killed.event_type == "budget.tenant_killed"

    async def ended() -> bool:
        states = await _states(pool, ids)
        return bool(states) and "waiting_tool" not in states and "pending" not in states

    await wait_for(ended, within=30, message="every run of the spent tenant to end")
    cancelled = [
        e for r in ids for e in await _events(pool, str(r)) if e.event_type == "run.cancelled"
    ]
    assert cancelled
    assert {e.payload.code for e in cancelled} == {E_BUDGET_KILLED.code}
    assert await _states(pool, others) == ["waiting_tool"]  # the other tenant's run goes on

    # The operator raises the budget (revision 2), then resets the switch.
    raised = {**small, "limits": [{"scope": "tenant", "period": "daily", "max_tokens": 100_000}]}
    second = lifecycle(spent, "budget", raised, revision=2, superseded=1)
    await produce(settings, second)
    (raised_ref,) = refs_of(second).values()
    await wait_for(
        lambda: (found := view.view.budget(spent)) is not None and found.ref == raised_ref,
        within=20,
        message="the raised budget read",
    )
    async with pool.acquire() as conn, conn.transaction():
        assert await kill_switch.reset_tenant(
            conn, spent, actor="user:ops", reason="budget raised", now=utc_now(), service="rt"
        )
    after = message(spent, "99", "and now?")
    await send(kafka_ready, Topics.INGRESS_EVENTS.name, f"{spent}:99", after)

    async def waiting() -> bool:
        return await _states(pool, [after.event_id]) in (["waiting_tool"], ["cancelled"])

    await wait_for(waiting, within=30, message="the run after the reset")
    assert await _states(pool, [after.event_id]) == ["waiting_tool"]


async def test_a_step_its_run_scope_cannot_fund_fails_the_run_and_trips_the_scope(
    kafka_ready: StackUrls, runner: ServiceRunner
) -> None:
    project = unique("kt")
    tiny = {
        "family": "budget",
        "schema_version": 1,
        "limits": [{"scope": "run", "period": "run", "max_tokens": 5}],
        "prices": [],
        "currency": "USD",
        "kill_switch_at": "0.9",
    }
    await publish_contracts(
        kafka_ready.settings(), project, {**demo_documents(project), "budget": tiny}
    )
    assert runner.contracts is not None
    assert runner.pool is not None
    view, pool = runner.contracts, runner.pool
    await wait_for(
        lambda: view.view.budget(project) is not None, within=20, message="the budget read"
    )
    async with TopicReader(kafka_ready.kafka, Topics.BUDGET_EVENTS.name) as budget_events:
        sent = message(project, "1", "is checkout healthy?")
        await send(kafka_ready, Topics.INGRESS_EVENTS.name, f"{project}:1", sent)
        seen = await budget_events.until(
            lambda s: any(e.project_id == project for e in s), within=30
        )
    (tripped,) = [e for e in seen if e.project_id == project]
    assert tripped.event_type == "budget.scope_tripped"
    assert tripped.payload.scope_key == f"{project}|run|{sent.event_id}|run|"
    events = await _events(pool, str(sent.event_id))
    assert [e.event_type for e in events] == ["run.started", "run.failed"]
    assert events[-1].payload.code == "E-BUDGET-REFUSED"
    assert await _states(pool, [sent.event_id]) == ["failed"]

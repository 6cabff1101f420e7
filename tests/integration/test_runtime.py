"""The runtime in one process: a message starts a run, the scripted agent asks for the demo
tool, the result resumes it, and it completes in shadow mode; a double text is rejected.
One batch locks, decides and writes all the runs it touches. The scheduler renews leases
at a third of their length, times a run out under a renewed lease, waits out a database
outage without counting an attempt, and a racing second run for a subject is a conflict."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from awooop.contracts.events.payloads.gateway import ToolCallSucceeded
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.postgres.errors import VersionConflict
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.runtime.adapters import runs
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.app import spec, utc_now
from awooop.runtime.domain.replay import replay_run
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import StepPool
from support.contracts import (
    agent_body,
    demo_agent_ref,
    demo_documents,
    every_project,
    lifecycle,
    produce,
    publish_contracts,
    refs_of,
    status_tool_body,
)
from support.infra import StackUrls, migrated, unique
from support.own_stack import own_stack
from support.pipeline import wait_for
from support.runtime_inputs import message, send, tool_result
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

CONTRACTS = every_project()
REVISION = demo_agent_ref()


async def test_a_message_becomes_a_completed_shadow_run(kafka_ready: StackUrls) -> None:
    project = unique("rt")
    refs = await publish_contracts(kafka_ready.settings(), project, demo_documents(project))
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        first = message(project, "42", "is checkout healthy?")
        key = f"{project}:{first.payload.platform_subject_id}"
        await send(kafka_ready, Topics.INGRESS_EVENTS.name, key, first)
        run_id = str(first.event_id)
        async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:

            def of_run(seen: list[Envelope[Any]]) -> list[Envelope[Any]]:
                return [e for e in seen if e.correlation_id == run_id]

            seen = await reader.until(
                lambda s: any(e.event_type == "run.tool_call_requested" for e in of_run(s))
            )
            request = next(e for e in of_run(seen) if e.event_type == "run.tool_call_requested")
            assert request.payload.tool == "status__demo"
            assert request.payload.revisions == (refs["demo-agent"],)

            # A double text while the run waits for its tool: rejected on the run.
            second = message(project, "42", "hello??")
            await send(kafka_ready, Topics.INGRESS_EVENTS.name, key, second)
            await send(kafka_ready, Topics.GATEWAY_EVENTS.name, run_id, tool_result(request))
            seen = await reader.until(
                lambda s: any(e.event_type == "run.completed" for e in of_run(s))
            )
        events = of_run(seen)
        types = [e.event_type for e in events]
        assert types[0] == "run.started"
        assert types[-1] == "run.completed"
        assert "run.message_rejected" in types
        assert "run.tool_result_accepted" in types
        assert [e.stream_seq for e in events] == list(range(1, len(events) + 1))
        completed = events[-1]
        assert completed.payload.suppressed is True
        assert "healthy" in completed.payload.reply
        assert all(e.trace_id == first.trace_id for e in events)
        assert not any(e.correlation_id == str(second.event_id) for e in seen)  # no 2nd run
        assert runner.pool is not None
        row = await runner.pool.fetchrow(
            f"SELECT {runs.COLUMNS} FROM runs WHERE run_id = $1", first.event_id
        )
        stored = runs.run_of(row)
        assert stored.state == "completed"
        # The run's own stream, folded again, is its row (the result it resumed with too).
        data = await runner.pool.fetch(
            "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq", run_id
        )
        replayed = replay_run(EnvelopeCodec().decode(bytes(r["data"])) for r in data)
        assert replayed == stored
        assert stored.last_result == {"service": "checkout", "status": "healthy"}
    finally:
        await runner.stop()


async def test_runs_started_after_a_new_agent_revision_name_it_mid_traffic(
    kafka_ready: StackUrls,
) -> None:
    """Messages keep arriving while revision 2 of the agent is activated: every run before
    the activation names revision 1 and answers as it, every run after it names revision
    2 and answers as it; none mixes the two."""
    project = unique("rtv")
    settings = kafka_ready.settings()
    one = agent_body(script=[{"reply": "answered by revision one"}])
    two = agent_body(script=[{"reply": "answered by revision two"}])
    first = await publish_contracts(settings, project, {"demo-agent": one})
    runner = ServiceRunner(spec(), settings)
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    sent: list[tuple[Envelope[Any], str]] = []  # each message and the phase it was sent in
    try:
        assert runner.contracts is not None
        reader = runner.contracts

        async def send_nth(n: int, phase: str) -> None:
            sent_message = message(project, str(1000 + n), f"message {n}")
            key = f"{project}:{sent_message.payload.platform_subject_id}"
            await send(kafka_ready, Topics.INGRESS_EVENTS.name, key, sent_message)
            sent.append((sent_message, phase))

        async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as events:

            def completed(s: list[Envelope[Any]], phases: tuple[str, ...]) -> bool:
                wanted = {str(m.event_id) for m, phase in sent if phase in phases}
                done = {e.correlation_id for e in s if e.event_type == "run.completed"}
                return wanted <= done

            for n in range(5):
                await send_nth(n, "before")
            await events.until(lambda s: completed(s, ("before",)))
            second = lifecycle(project, "demo-agent", two, revision=2, superseded=1)
            await produce(settings, second)
            (second_ref,) = refs_of(second).values()
            n = 5
            while reader.view.refs().get((project, "demo-agent")) != second_ref:
                assert n < 200, "the running reader never applied revision 2"
                await send_nth(n, "during")
                n += 1
                await asyncio.sleep(0.05)
            for m in range(n, n + 5):
                await send_nth(m, "after")
            seen = await events.until(lambda s: completed(s, ("before", "during", "after")))
    finally:
        await runner.stop()
    started = {e.correlation_id: e for e in seen if e.event_type == "run.started"}
    replies = {e.correlation_id: e.payload.reply for e in seen if e.event_type == "run.completed"}
    expected = {
        first["demo-agent"]: "answered by revision one",
        second_ref: "answered by revision two",
    }
    for sent_message, phase in sent:
        run_id = str(sent_message.event_id)
        (revision,) = started[run_id].payload.revisions
        assert replies[run_id] == expected[revision]
        if phase == "before":
            assert revision == first["demo-agent"]
        if phase == "after":
            assert revision == second_ref


class _Submitted(StepPool):
    """A step pool that only records what the processor hands it."""

    def __init__(self, pool: Any) -> None:
        super().__init__(
            pool,
            "batch-owner",
            lambda: None,
            contracts=CONTRACTS,
            clock=utc_now,
            service="runtime",
            inline_steps=False,
        )
        self.leases: list[Lease] = []

    def submit(self, lease: Lease, *, claimed: bool = True) -> None:
        self.leases.append(lease)


def _record(env: Envelope[Any], offset: int) -> DecodedRecord:
    return DecodedRecord(RawRecord("t", 0, offset, None, b"", (), 0), env)


async def test_one_batch_locks_decides_and_writes_its_runs_at_once(
    kafka_ready: StackUrls,
) -> None:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    project = unique("rtb")
    try:
        assert runner.pool is not None
        steps = _Submitted(runner.pool)
        processor = RuntimeProcessor(steps, contracts=CONTRACTS, clock=utc_now, service="runtime")
        first, second = message(project, "1", "hi"), message(project, "1", "again")
        other = message(project, "2", "hello")
        batch = [_record(first, 0), _record(second, 1), _record(other, 2), _record(first, 3)]
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, batch)
        processor.committed()
        assert sorted((x.run_id, x.epoch, x.attempt) for x in steps.leases) == sorted(
            [(first.event_id, 1, 1), (other.event_id, 1, 1)]
        )
        rows = {
            r["run_id"]: r
            for r in await runner.pool.fetch(
                "SELECT run_id, state, version, lease_owner, lease_epoch, attempt, "
                " wake_at IS NOT NULL AS due, lease_until > now() AS held, "
                " timeout_at > now() AS timer FROM runs WHERE project_id = $1",
                project,
            )
        }
        assert set(rows) == {first.event_id, other.event_id}
        started = rows[first.event_id]
        assert (started["state"], started["version"], started["lease_owner"]) == (
            "pending",
            2,
            "batch-owner",
        )
        assert started["due"]
        assert started["held"]
        assert started["timer"]

        # The run waits for its tool; its answer and a double text arrive in one batch.
        call_id = f"{first.event_id}:0"
        await runner.pool.execute(
            "UPDATE runs SET state = 'waiting_tool', step = 1, pending_call_id = $2, "
            " lease_owner = NULL, lease_until = NULL, wake_at = NULL, attempt = 0 "
            "WHERE run_id = $1",
            first.event_id,
            call_id,
        )
        answer = new_envelope(
            ToolCallSucceeded(call_id=call_id, result={"status": "healthy"}, revisions=(REVISION,)),
            occurred_at=dt.datetime.now(dt.UTC),
            project_id=project,
            stream_type="tool_call",
            stream_id=call_id,
            stream_seq=1,
            trace_id=first.trace_id,
            correlation_id=str(first.event_id),
            actor="service:mcp_gateway",
            producer="mcp_gateway",
        )
        third = message(project, "1", "and?")
        steps.leases.clear()
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, [_record(answer, 4), _record(third, 5)])
        processor.committed()
        assert [(x.run_id, x.epoch) for x in steps.leases] == [(first.event_id, 2)]
        row = await runner.pool.fetchrow(
            "SELECT state, version, pending_call_id, last_result->>'status' AS status, "
            " lease_owner, lease_epoch, attempt FROM runs WHERE run_id = $1",
            first.event_id,
        )
        assert dict(row) == {
            "state": "running",
            "version": 4,
            "pending_call_id": None,
            "status": "healthy",
            "lease_owner": "batch-owner",
            "lease_epoch": 2,
            "attempt": 1,
        }
        seqs = await runner.pool.fetch(
            "SELECT stream_seq FROM events WHERE stream_id = $1 ORDER BY stream_seq",
            str(first.event_id),
        )
        assert [r["stream_seq"] for r in seqs] == [1, 2, 3, 4]
    finally:
        await runner.stop()


# --- the scheduler against real Postgres -------------------------------------------------


def _schema_only() -> ServiceSpec:
    """The runtime's schema and pool without its consumer, scheduler or relay: the test
    drives one step pool itself and is the only claimer."""
    return dataclasses.replace(
        spec(), processor=None, background=(), relay=False, reads_contracts=False
    )


@contextlib.asynccontextmanager
async def _schema_pool(urls: StackUrls) -> AsyncIterator[asyncpg.Pool]:
    """The runtime's migrated schema and its pool, without any of its workers."""
    runner = ServiceRunner(_schema_only(), urls.settings())
    await migrated(urls.database, runner.spec)
    await runner.start()
    try:
        assert runner.pool is not None
        yield runner.pool
    finally:
        await runner.stop()


def _step_pool(pool: asyncpg.Pool, **options: Any) -> StepPool:
    return StepPool(
        pool,
        unique("owner"),
        lambda: None,
        contracts=CONTRACTS,
        clock=utc_now,
        service="runtime",
        claim_interval=0.05,
        **options,
    )


async def _due_run(
    pool: asyncpg.Pool, *, timeout_seconds: float = 300, max_attempts: int = 3
) -> uuid.UUID:
    """A pending run whose first step is due now and that nobody holds."""
    run_id = uuid.uuid4()
    project = unique("rs")
    await pool.execute(
        "INSERT INTO runs (run_id, project_id, platform_subject_id, agent_id, channel_type, "
        " chat_id, mode, revision, trace_id, state, version, last_event_id, max_attempts, "
        " timeout_at, wake_at) "
        "VALUES ($1, $2, $3, $4, 'telegram', '42', 'shadow', $5, $6, 'pending', 0, $1, $7, "
        " now() + make_interval(secs => $8), now())",
        run_id,
        project,
        f"{project}:telegram:42",
        "demo-agent",
        REVISION,
        new_trace_id(),
        max_attempts,
        timeout_seconds,
    )
    return run_id


async def _run_row(pool: asyncpg.Pool, run_id: uuid.UUID) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT state, attempt, lease_owner, lease_epoch, lease_until, "
        " lease_until > now() AS held FROM runs WHERE run_id = $1",
        run_id,
    )
    assert row is not None
    return row


async def _event_types(pool: asyncpg.Pool, run_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq", str(run_id)
    )
    return [EnvelopeCodec().decode(bytes(r["data"])).event_type for r in rows]


@contextlib.asynccontextmanager
async def _running(steps: StepPool) -> AsyncIterator[None]:
    task = asyncio.create_task(steps.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_heartbeats_renew_a_held_lease_at_a_third_of_its_length(
    kafka_ready: StackUrls,
) -> None:
    async with _schema_pool(kafka_ready) as pool:
        run_id = await _due_run(pool)
        # A 3 s lease on a step that thinks for 2.5 s, with a claim tick every 0.05 s.
        steps = _step_pool(pool, lease_seconds=3.0, step_delay=2.5)
        async with _running(steps):
            await wait_for(
                lambda: _claimed(pool, run_id), within=20, message="the run to be claimed"
            )
            renewals: list[dt.datetime] = []
            while True:
                row = await _run_row(pool, run_id)
                if row["state"] != "pending":
                    break
                assert row["held"], "the lease lapsed while its step was running"
                if not renewals or row["lease_until"] != renewals[-1]:
                    renewals.append(row["lease_until"])
                await asyncio.sleep(0.02)
            await wait_for(
                lambda: _state_is(pool, run_id, "waiting_tool"), within=20, message="the step"
            )
        # Ticks every 0.05 s over ~2.5 s: a heartbeat per tick would renew ~50 times; one
        # per second renews two or three times after the claim.
        assert 2 <= len(renewals) <= 5, renewals
        assert await _event_types(pool, run_id) == ["run.tool_call_requested"]


class _Groups:
    """The groups a pool's executor was handed, and which runs' own code fails."""

    def __init__(self, steps: StepPool, failing: frozenset[uuid.UUID] = frozenset()) -> None:
        self.sizes: list[int] = []
        executor = steps.executor
        group_steps, prepare = executor.steps, executor._prepare

        async def recorded(pool: asyncpg.Pool, leases: Any) -> Any:
            self.sizes.append(len(leases))
            return await group_steps(pool, leases)

        async def failing_prepare(conn: Any, lease: Any, run: Any, saves: Any) -> Any:
            if run.run_id in failing:
                raise RuntimeError("this run's own step fails")
            return await prepare(conn, lease, run, saves)

        executor.steps = recorded  # type: ignore[method-assign]
        executor._prepare = failing_prepare  # type: ignore[method-assign]


async def _all_waiting_tool(pool: asyncpg.Pool, run_ids: list[uuid.UUID]) -> bool:
    states = await pool.fetch("SELECT state FROM runs WHERE run_id = ANY($1::uuid[])", run_ids)
    return all(row["state"] == "waiting_tool" for row in states)


async def test_steps_claimed_together_commit_as_groups_each_run_once(
    kafka_ready: StackUrls,
) -> None:
    async with _schema_pool(kafka_ready) as pool:
        run_ids = [await _due_run(pool) for _ in range(40)]
        steps = _step_pool(pool)
        groups = _Groups(steps)
        async with _running(steps):
            await wait_for(
                lambda: _all_waiting_tool(pool, run_ids), within=30, message="every first step"
            )
        # One claim leases up to 32 (twice the workers); a worker takes what is queued.
        assert max(groups.sizes) > 1, groups.sizes
        assert sum(groups.sizes) == 40, groups.sizes
        assert steps.steps == 40
        for run_id in run_ids:
            assert await _event_types(pool, run_id) == ["run.tool_call_requested"]

        # An idle pool takes a lone step at once, in a group of its own.
        lone = await _due_run(pool)
        steps = _step_pool(pool)
        groups = _Groups(steps)
        async with _running(steps):
            await wait_for(lambda: _state_is(pool, lone, "waiting_tool"), within=20, message="it")
        assert groups.sizes == [1]


async def test_a_run_whose_own_step_fails_never_holds_back_its_group(
    kafka_ready: StackUrls,
) -> None:
    async with _schema_pool(kafka_ready) as pool:
        bad = await _due_run(pool)
        good = [await _due_run(pool) for _ in range(9)]
        steps = _step_pool(pool)
        groups = _Groups(steps, failing=frozenset({bad}))
        async with _running(steps):
            await wait_for(
                lambda: _all_waiting_tool(pool, good), within=30, message="the other steps"
            )
        assert groups.sizes[0] == 10, groups.sizes
        for run_id in good:
            assert await _event_types(pool, run_id) == ["run.tool_call_requested"]
        # The failing step wrote nothing: its lease runs out and it is tried again.
        assert await _event_types(pool, bad) == []
        assert (await _run_row(pool, bad))["state"] == "pending"


async def _claimed(pool: asyncpg.Pool, run_id: uuid.UUID) -> bool:
    return (await _run_row(pool, run_id))["lease_owner"] is not None


async def _state_is(pool: asyncpg.Pool, run_id: uuid.UUID, state: str) -> bool:
    return bool((await _run_row(pool, run_id))["state"] == state)


async def test_a_run_times_out_while_its_lease_is_being_renewed(
    kafka_ready: StackUrls,
) -> None:
    async with _schema_pool(kafka_ready) as pool:
        run_id = await _due_run(pool, timeout_seconds=1.0)
        # The step thinks for 4 s, well past the run's 1 s timeout, and its heartbeats run
        # every second: the timeout must take the run from under the step.
        steps = _step_pool(pool, lease_seconds=3.0, step_delay=4.0)
        async with _running(steps):
            await wait_for(
                lambda: _state_is(pool, run_id, "timeout"), within=20, message="the timeout"
            )
            assert await _event_types(pool, run_id) == ["run.timed_out"]
            # The overtaken step wakes, finds its lease epoch gone and commits nothing.
            await wait_for(lambda: steps.steps >= 1, within=20, message="the timeout step")
            await asyncio.sleep(4.5)
        assert await _event_types(pool, run_id) == ["run.timed_out"]
        row = await _run_row(pool, run_id)
        assert (row["state"], row["lease_epoch"]) == ("timeout", 3)
        assert steps.steps == 1


async def test_an_outage_during_a_step_is_not_a_failed_attempt(tmp_path: Path) -> None:
    with own_stack(tmp_path) as stack:
        async with _schema_pool(stack.urls) as pool:
            # One attempt allowed: a counted attempt would end the run with E-RUN-ATTEMPTS.
            run_id = await _due_run(pool, max_attempts=1)
            steps = _step_pool(pool, lease_seconds=3.0, step_delay=0.5, max_backoff=0.5)
            async with _running(steps):
                await wait_for(
                    lambda: _claimed(pool, run_id), within=20, message="the run to be claimed"
                )
                await asyncio.to_thread(stack.stop_postgres)
                await wait_for(
                    lambda: steps.outage_retries >= 2, within=20, message="the step to retry"
                )
                await asyncio.to_thread(stack.start_postgres)
                await wait_for(
                    lambda: _state_is(pool, run_id, "waiting_tool"),
                    within=30,
                    message="the step to commit after the outage",
                )
            # Epoch 1 from the claim, 2 from the step's save: never re-claimed as an attempt.
            row = await _run_row(pool, run_id)
            assert (row["state"], row["lease_epoch"]) == ("waiting_tool", 2)
            assert await _event_types(pool, run_id) == ["run.tool_call_requested"]
            assert steps.steps == 1


async def test_a_second_active_run_for_a_subject_is_a_conflict_decided_again(
    kafka_ready: StackUrls,
) -> None:
    runner = ServiceRunner(_schema_only(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    project = unique("rtc")
    try:
        assert runner.pool is not None
        pool = runner.pool

        def processor() -> RuntimeProcessor:
            return RuntimeProcessor(
                _Submitted(pool),
                contracts=CONTRACTS,
                clock=utc_now,
                service="runtime",
            )

        first, second = message(project, "9", "one"), message(project, "9", "two")
        async with pool.acquire() as one, pool.acquire() as two:
            tx_one = one.transaction()
            await tx_one.start()
            await processor().process(one, [_record(first, 0)])
            # The second batch locked no active run (none was committed): its insert waits
            # on the unique index until the first commits, then collides.
            tx_two = two.transaction()
            await tx_two.start()
            racing = asyncio.create_task(processor().process(two, [_record(second, 1)]))
            await asyncio.sleep(0.3)
            assert not racing.done()
            await tx_one.commit()
            with pytest.raises(VersionConflict):
                await racing
            await tx_two.rollback()
        # Decided again, the second message finds the first run active and is rejected on it.
        async with pool.acquire() as conn, conn.transaction():
            await processor().process(conn, [_record(second, 1)])
        assert await _event_types(pool, first.event_id) == ["run.started", "run.message_rejected"]
        count = await pool.fetchval("SELECT count(*) FROM runs WHERE project_id = $1", project)
        assert count == 1
    finally:
        await runner.stop()


async def test_the_claim_query_reads_the_timeout_index(kafka_ready: StackUrls) -> None:
    runner = ServiceRunner(_schema_only(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        assert runner.pool is not None
        async with runner.pool.acquire() as conn:
            # The table as a busy platform has it, in a transaction that is rolled back:
            # thousands of active runs waiting for a tool's answer (no `wake_at`) whose
            # timeouts are still ahead. On the few rows other tests leave, either partial
            # index costs about the same and the planner's pick between them follows the
            # statistics of the moment. ANALYZE counts the transaction's own rows; the
            # rollback takes the rows and the statistics away again.
            scratch = conn.transaction()
            await scratch.start()
            try:
                await conn.execute(
                    "INSERT INTO runs (run_id, project_id, platform_subject_id, agent_id, "
                    " channel_type, chat_id, mode, revision, trace_id, state, version, "
                    " last_event_id, max_attempts, timeout_at) "
                    "SELECT gen_random_uuid(), 'claim-plan', 'subject-' || n, 'agent', "
                    " 'telegram', 'chat', 'active', 'agent@1', 'trace', 'waiting_tool', 2, "
                    " gen_random_uuid(), 3, now() + interval '10 minutes' "
                    "FROM generate_series(1, 5000) AS n"
                )
                await conn.execute("ANALYZE runs")
                # Forbid sequential and bitmap scans: each branch must then name the index
                # that serves it.
                await conn.execute("SET LOCAL enable_seqscan = off")
                await conn.execute("SET LOCAL enable_bitmapscan = off")
                explained = await conn.fetch("EXPLAIN " + runs.CLAIM_DUE, "owner", 32, 30.0, [])
            finally:
                await scratch.rollback()
            left = "SELECT count(*) FROM runs WHERE project_id = 'claim-plan'"
            assert await conn.fetchval(left) == 0  # no other test ever meets these runs
        plan = "\n".join(row[0] for row in explained)
        # Each branch's own condition is an index condition.
        assert "Index Cond: (wake_at <= now())" in plan, plan
        assert "Index Cond: (timeout_at <= now())" in plan, plan
        assert "runs_timeout" in plan, plan
    finally:
        await runner.stop()


# --- scripted steps taken by the batch that leased them ---------------------------------


class _Inline(StepPool):
    """A step pool that lets batches take scripted steps and records what it is handed."""

    def __init__(self, pool: asyncpg.Pool, contracts: Any = CONTRACTS) -> None:
        super().__init__(
            pool,
            "inline-owner",
            lambda: None,
            contracts=contracts,
            clock=utc_now,
            service="runtime",
        )
        self.leases: list[Lease] = []

    def submit(self, lease: Lease, *, claimed: bool = True) -> None:
        self.leases.append(lease)


async def _fold(pool: asyncpg.Pool, processor: RuntimeProcessor, *messages: Envelope[Any]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await processor.process(conn, [_record(m, n) for n, m in enumerate(messages)])
    processor.committed()


async def test_a_batch_takes_the_scripted_steps_it_leased_in_its_own_transaction(
    kafka_ready: StackUrls,
) -> None:
    async with _schema_pool(kafka_ready) as pool:
        project = unique("rti")
        steps = _Inline(pool)
        processor = RuntimeProcessor(steps, contracts=CONTRACTS, clock=utc_now, service="runtime")
        first, other = message(project, "1", "hi"), message(project, "2", "hello")
        # Inside the batch's transaction: a batch rolled back takes its steps with it.
        async with pool.acquire() as conn:
            batch = conn.transaction()
            await batch.start()
            await processor.process(conn, [_record(first, 0), _record(other, 1)])
            seen = await conn.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1", str(first.event_id)
            )
            await batch.rollback()
        assert seen == 2  # run.started and the step's request
        assert await _event_types(pool, first.event_id) == []
        assert steps.leases == []
        assert steps.steps == 0  # counted only once the batch commits
        await _fold(pool, processor, first, other)
        assert steps.leases == []  # nothing was left for the pool
        assert steps.steps == 2
        for run in (first, other):
            assert await _event_types(pool, run.event_id) == [
                "run.started",
                "run.tool_call_requested",
            ]
            row = await _run_row(pool, run.event_id)
            assert (row["state"], row["lease_owner"]) == ("waiting_tool", None)


LOCK_KEY = 774_201
"""An advisory lock another session holds while a step waits for it."""


@pytest.mark.parametrize("failure", ["data", "lock"])
async def test_a_failing_scripted_step_leaves_its_batch_and_goes_to_the_pool(
    kafka_ready: StackUrls, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """A step that fails inside the batch (a Postgres error after it wrote, or a lock it
    lost a race for) is rolled back to its savepoint: the batch's own writes commit and
    every lease it took goes to the pool, which takes each step as any other."""
    async with _schema_pool(kafka_ready) as pool:
        project = unique("rtf")
        steps = _Inline(pool)
        processor = RuntimeProcessor(steps, contracts=CONTRACTS, clock=utc_now, service="runtime")
        good, bad = message(project, "1", "hi"), message(project, "2", "hello")
        prepare = steps.executor._prepare

        async def failing(conn: Any, lease: Lease, held: Any, saves: Any) -> Any:
            if held.run_id == bad.event_id:
                await conn.execute(
                    "UPDATE runs SET step = step + 7 WHERE run_id = $1", bad.event_id
                )
                if failure == "data":
                    await conn.execute("SELECT 1 / 0")
                await conn.execute("SET LOCAL lock_timeout = '100ms'")
                await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            return await prepare(conn, lease, held, saves)

        monkeypatch.setattr(steps.executor, "_prepare", failing)
        async with pool.acquire() as holder:
            await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            try:
                await _fold(pool, processor, good, bad)
            finally:
                await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        # The batch's own writes stand; neither step was taken, both wait in the pool.
        assert sorted(lease.run_id for lease in steps.leases) == sorted(
            [good.event_id, bad.event_id]
        )
        assert steps.steps == 0
        for run in (good, bad):
            assert await _event_types(pool, run.event_id) == ["run.started"]
            row = await _run_row(pool, run.event_id)
            assert (row["state"], row["lease_owner"], row["held"]) == (
                "pending",
                "inline-owner",
                True,
            )
        step = await pool.fetchval("SELECT step FROM runs WHERE run_id = $1", bad.event_id)
        assert step == 0  # the failed step's own write was rolled back with it
        # The pool takes them as any leased steps: a bad step fails alone, a lost race
        # is won on the next try.
        await steps.executor.steps(pool, steps.leases)
        assert await _event_types(pool, good.event_id) == ["run.started", "run.tool_call_requested"]
        assert await _event_types(pool, bad.event_id) == (
            ["run.started"] if failure == "data" else ["run.started", "run.tool_call_requested"]
        )


async def test_a_batch_leaves_a_remote_models_step_to_the_pool(kafka_ready: StackUrls) -> None:
    remote = agent_body("llm-agent")
    remote["provider"] = {
        "kind": "openai_compatible",
        "model": "fake-model",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "env:LLM_KEY",
    }
    contracts = every_project(
        {"demo-agent": agent_body(), "llm-agent": remote, "status-demo": status_tool_body()}
    )
    async with _schema_pool(kafka_ready) as pool:
        project = unique("rtr")
        steps = _Inline(pool, contracts)
        processor = RuntimeProcessor(steps, contracts=contracts, clock=utc_now, service="runtime")
        scripted = message(project, "1", "hi")
        asking = message(project, "2", "hello", agent="llm-agent")
        await _fold(pool, processor, scripted, asking)
        assert [(lease.run_id, lease.epoch) for lease in steps.leases] == [(asking.event_id, 1)]
        assert await _event_types(pool, asking.event_id) == ["run.started"]
        assert await _event_types(pool, scripted.event_id) == [
            "run.started",
            "run.tool_call_requested",
        ]

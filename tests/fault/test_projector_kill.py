"""Two projector processes, one killed (SIGKILL) in the middle of a batch transaction
while bursts of events are still arriving: every event is applied exactly once.

The events (an `ingress.message_received`, a `run.started` and a `run.completed` per
run) are produced straight onto the projector's topics, so the services that would
react to them (ingress, runtime, gateway, approval) are stopped first: the projectors
and the query API run alone. The victim is frozen (SIGSTOP) while one of its
Postgres backends is inside a batch transaction that has written, then killed while
still frozen; that transaction must end aborted, and the survivor must bring the read
models to what the log says.

"Exactly once" is counted, not inferred from rows. The read models are idempotent
(timeline rows behind `ON CONFLICT (event_id) DO NOTHING`, run rows moving only
forward), so an event applied twice leaves them unchanged and no read-model query can
reveal it. A `BEFORE INSERT` trigger on the timeline (support/apply_counter.py) fires
for every row a batch proposes, conflicting or not, and counts it in the same
transaction: the victim's aborted batch leaves no count, every committed application
leaves one.

Breaks caught: a batch applied twice, whether by the projector itself, by the survivor
re-reading what the victim had committed (offsets not stored with the batch, or not
sought on assignment), or by a revoked owner's late commit (the `projector_offsets`
row lock and the drop of records below the stored offset missing); an event never
applied (offsets past what committed); read models that differ from the projector's
own pure fold (`fold_batch`) of everything on the topics.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
from collections import Counter
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import TopicPartition

from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import RunCompleted, RunStarted
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics, consumer_group
from awooop.infra.kafka.producer import create_producer
from awooop.projector.domain.read_models import PROJECTED_EVENT_TYPES, fold_batch
from awooop.projector.domain.rows import RUN_COLUMNS, TIMELINE_COLUMNS
from support.apply_counter import applications, install_apply_counter
from support.fault_helpers import (
    SQL_IDS_CHECKSUM,
    admin_connection,
    frozen_then_killed,
    ids_checksum,
    local_tcp_ports,
    own_api_port,
    pid_of,
    poll,
    read_to_end,
)
from support.infra import unique
from support.platform_procs import RunningPlatform, own_platform

pytestmark = pytest.mark.fault

PROJECTORS = ("projector", "projector-2")
REACTING_SERVICES = ("ingress", "runtime", "mcp_gateway", "approval")
TOPICS = (Topics.INGRESS_EVENTS.name, Topics.RUN_EVENTS.name, Topics.GATEWAY_EVENTS.name)
RUNS_PER_BURST = 50  # 150 envelopes
BURSTS_AFTER_KILL = 8
MAX_BURSTS_BEFORE_KILL = 60
BURST_PAUSE = 0.1
CODEC = EnvelopeCodec()
APPLICATION = "awooop-projector"
# What a projector's batch transaction sends before its COMMIT (the projector writes
# nowhere else once started, so this only makes the intent explicit).
BATCH_STATEMENT = re.compile(
    r"projector_offsets|_rows|INSERT INTO (timeline|runs)|app\.project_ids"
)


def test_projector_killed_mid_batch_every_event_applied_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique("pk")
    own_api_port(monkeypatch)
    with own_platform(
        tmp_path / "p",
        # The two projectors' backends are told apart by their client ports.
        postgres_over_tcp=True,
        AWOOOP_KAFKA_SESSION_TIMEOUT_MS="2000",
        AWOOOP_KAFKA_HEARTBEAT_MS="300",
    ) as running:
        for name in REACTING_SERVICES:
            assert running.signal(name, signal.SIGTERM) == 0
            running.forget(name)
        running.start("projector-2", service="projector")
        running.wait_ready()
        asyncio.run(_scenario(running, project))


@dataclass(frozen=True)
class _Produced:
    topic: str
    key: str
    envelope: Envelope[Any]


def _one_run(project: str, n: int) -> list[_Produced]:
    """The three events of run `n`: its message (whose event id is the run id), started,
    completed; keyed as ingress and the runtime key them."""
    run_id = new_event_id()
    trace_id = new_trace_id()
    subject = f"{project}:telegram:{100000 + n}"
    at = dt.datetime.now(dt.UTC)
    common: dict[str, Any] = {
        "project_id": project,
        "trace_id": trace_id,
        "correlation_id": str(run_id),
    }
    message = new_envelope(
        MessageReceived(
            channel_type="telegram",
            provider_event_id=f"7000:{n}",
            platform_subject_id=subject,
            chat_id=str(100000 + n),
            text=f"message {n}",
            display_text=f"message {n}",
            received_at=at,
            agent_id="demo-agent",
            revisions=(),
        ),
        occurred_at=at,
        stream_type="inbound",
        stream_id=f"{project}:telegram:7000:{n}",
        stream_seq=1,
        actor="service:ingress",
        producer="ingress",
        event_id=run_id,
        **common,
    )
    started = new_envelope(
        RunStarted(
            agent_id="demo-agent",
            channel_type="telegram",
            chat_id=str(100000 + n),
            platform_subject_id=subject,
            trigger_event_id=run_id,
            mode="shadow",
            revisions=("demo-agent@1:0123456789ab",),
            agent_revision="demo-agent@1:0123456789ab",
        ),
        occurred_at=at + dt.timedelta(milliseconds=1),
        stream_type="run",
        stream_id=str(run_id),
        stream_seq=1,
        actor="service:runtime",
        producer="runtime",
        causation_id=str(run_id),
        **common,
    )
    completed = new_envelope(
        RunCompleted(reply=f"reply {n}", suppressed=True),
        occurred_at=at + dt.timedelta(milliseconds=2),
        stream_type="run",
        stream_id=str(run_id),
        stream_seq=2,
        actor="service:runtime",
        producer="runtime",
        causation_id=str(started.event_id),
        **common,
    )
    return [
        _Produced(Topics.INGRESS_EVENTS.name, f"{project}:{subject}", message),
        _Produced(Topics.RUN_EVENTS.name, str(run_id), started),
        _Produced(Topics.RUN_EVENTS.name, str(run_id), completed),
    ]


@dataclass(frozen=True)
class _Kill:
    name: str
    xid: str
    applied: int  # timeline rows committed when it died
    bursts: int  # bursts produced by then


async def _scenario(running: RunningPlatform, project: str) -> None:
    conn = await admin_connection(running)
    try:
        await install_apply_counter(conn)
        produced: list[_Produced] = []
        first_burst = asyncio.Event()
        killed: asyncio.Future[_Kill] = asyncio.get_running_loop().create_future()
        producing = asyncio.create_task(
            _produce_bursts(running, project, produced, first_burst, killed)
        )
        try:
            await first_burst.wait()
            kill = await _kill_a_projector_mid_batch(running, conn, project, produced)
            killed.set_result(kill)
            await producing
        finally:
            producing.cancel()
        survivor = next(name for name in PROJECTORS if name != kill.name)
        assert running.platform.processes[survivor].poll() is None

        # The victim's batch transaction really was cut off.
        status = await poll(
            lambda: _xact_status(conn, kill.xid),
            within=10,
            message=lambda: f"transaction {kill.xid} of {kill.name} never ended",
        )
        assert status == "aborted"
        assert 0 < kill.applied < len(produced)
        assert kill.bursts < len(produced) // (3 * RUNS_PER_BURST)

        await _assert_applied_once(running, conn, project, produced)
    finally:
        await conn.close()


async def _produce_bursts(
    running: RunningPlatform,
    project: str,
    produced: list[_Produced],
    first_burst: asyncio.Event,
    killed: asyncio.Future[_Kill],
) -> None:
    """Bursts every BURST_PAUSE until a projector is killed, then BURSTS_AFTER_KILL more."""
    producer = create_producer(running.stack.urls.settings().kafka)
    await producer.start()
    try:
        bursts, after_kill = 0, 0
        while after_kill < BURSTS_AFTER_KILL:
            assert bursts < MAX_BURSTS_BEFORE_KILL + BURSTS_AFTER_KILL, "no projector was killed"
            burst = [
                item
                for n in range(bursts * RUNS_PER_BURST, (bursts + 1) * RUNS_PER_BURST)
                for item in _one_run(project, n)
            ]
            sent = [
                await producer.send(
                    item.topic,
                    CODEC.encode(item.envelope),
                    key=item.key.encode(),
                    headers=record_headers(item.envelope, make_traceparent(item.envelope.trace_id)),
                )
                for item in burst
            ]
            await asyncio.gather(*sent)
            produced.extend(burst)
            bursts += 1
            first_burst.set()
            if killed.done():
                after_kill += 1
            await asyncio.sleep(BURST_PAUSE)
    finally:
        await producer.stop()


async def _kill_a_projector_mid_batch(
    running: RunningPlatform, conn: asyncpg.Connection, project: str, produced: list[_Produced]
) -> _Kill:
    """Once the first burst is partly applied, catch a projector whose backend is inside a
    batch transaction that has written (it has an xid), freeze it, check that its
    transaction is still open and cannot commit, and SIGKILL it."""

    async def applied() -> int:
        count = await conn.fetchval(
            "SELECT count(*) FROM projector.timeline WHERE project_id = $1", project
        )
        return int(count)

    await poll(lambda: _some(applied()), within=30, message=lambda: "nothing was ever applied")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        ports = {name: local_tcp_ports(pid_of(running, name)) for name in PROJECTORS}
        for row in await _writing_backends(conn):
            name = next((n for n, p in ports.items() if row["client_port"] in p), None)
            if name is None:
                continue

            async def still_open(name: str = name, mine: set[int] = ports[name]) -> _Kill | None:
                await asyncio.sleep(0.02)  # let a statement already sent finish
                for frozen in await _writing_backends(conn):
                    if frozen["client_port"] in mine and BATCH_STATEMENT.search(frozen["query"]):
                        bursts = len(produced) // (3 * RUNS_PER_BURST)
                        return _Kill(name, frozen["xid"], await applied(), bursts)
                return None

            kill = await frozen_then_killed(running, name, still_open)
            if kill is not None:
                return kill
            break
        await asyncio.sleep(0.002)
    raise AssertionError("no projector was ever caught inside a batch transaction")


async def _some(value: Any) -> Any:
    result = await value
    return result or None


async def _writing_backends(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Projector backends inside a transaction that has written something."""
    return list(
        await conn.fetch(
            "SELECT client_port, backend_xid::text AS xid, state, query "
            "FROM pg_stat_activity WHERE application_name = $1 AND backend_xid IS NOT NULL",
            APPLICATION,
        )
    )


async def _xact_status(conn: asyncpg.Connection, xid: str) -> str | None:
    # A fresh cluster is in xid epoch 0, so the 32-bit xid is the full xid8.
    status = await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", xid)
    return None if status == "in progress" else str(status)


async def _assert_applied_once(
    running: RunningPlatform, conn: asyncpg.Connection, project: str, produced: list[_Produced]
) -> None:
    event_ids = {item.envelope.event_id for item in produced}
    assert len(event_ids) == len(produced)
    runs = len(produced) // 3

    async def caught_up() -> tuple[int, int] | None:
        timeline = await conn.fetchval(
            "SELECT count(*) FROM projector.timeline WHERE project_id = $1", project
        )
        completed = await conn.fetchval(
            "SELECT count(*) FROM projector.runs WHERE project_id = $1 AND state = 'completed'",
            project,
        )
        return (timeline, completed) if (timeline, completed) == (len(produced), runs) else None

    await poll(
        caught_up,
        within=60,
        every=0.25,
        message=lambda: f"the survivor never applied all {len(produced)} events",
    )

    # Counts and checksums: the read model, what was produced, what the topics hold.
    row = await conn.fetchrow(
        f"SELECT count(*) AS rows, count(DISTINCT event_id) AS ids, {SQL_IDS_CHECKSUM} AS sum "
        "FROM projector.timeline WHERE project_id = $1",
        project,
    )
    assert (row["rows"], row["ids"]) == (len(event_ids), len(event_ids))
    assert row["sum"] == ids_checksum(event_ids)
    records, highwaters = await read_to_end(running.env["AWOOOP_KAFKA_BOOTSTRAP"], TOPICS)
    on_topics = {r.envelope.event_id for r in records if r.envelope.project_id == project}
    assert on_topics == event_ids
    assert ids_checksum(on_topics) == row["sum"]

    # Every record of every partition consumed, none past the end.
    async def offsets_at_end() -> dict[TopicPartition, int] | None:
        stored = {
            TopicPartition(r["topic"], r["partition"]): r["next_offset"]
            for r in await conn.fetch(
                "SELECT topic, partition, next_offset FROM projector.projector_offsets "
                "WHERE consumer_group = $1",
                consumer_group("projector"),
            )
        }
        return stored if stored == {tp: n for tp, n in highwaters.items() if n} else None

    await poll(
        offsets_at_end,
        within=10,
        message=lambda: f"projector offsets never reached the high watermarks {highwaters}",
    )

    # Each event applied by exactly one committed batch (the trigger's count).
    applied = await applications(conn, event_ids)
    not_once = {str(e): applied[e] for e in event_ids if applied[e] != 1}
    assert not not_once, (
        f"{len(not_once)} of {len(event_ids)} events not applied exactly once "
        f"(event: applications), e.g. {dict(list(not_once.items())[:5])}"
    )

    # The read models are the projector's own fold of everything on the topics.
    mine = [
        r.envelope
        for r in records
        if r.envelope.project_id == project and r.envelope.event_type in PROJECTED_EVENT_TYPES
    ]
    assert len(mine) == len(produced), "a record is on the topics twice: a producer retry"
    folded = fold_batch(mine)
    timeline = await conn.fetch("SELECT * FROM projector.timeline WHERE project_id = $1", project)
    assert {r["event_id"]: _timeline_values(r) for r in timeline} == {
        t.event_id: astuple(t) for t in folded.timeline
    }
    per_run = Counter(r["run_id"] for r in timeline)
    assert set(per_run.values()) == {3}, "a run's timeline is not its three events"
    run_rows = await conn.fetch("SELECT * FROM projector.runs WHERE project_id = $1", project)
    assert {r["run_id"]: tuple(r[c] for c in RUN_COLUMNS) for r in run_rows} == {
        run.run_id: run.values() for run in folded.runs
    }

    # Each run row is exactly what its three events say.
    expected = _expected_runs(project, produced)
    rows = await conn.fetch("SELECT * FROM projector.runs WHERE project_id = $1", project)
    assert {r["run_id"]: dict(r) for r in rows} == expected

    # And the query API (a non-superuser under RLS) sees the same runs.
    listed: list[dict[str, Any]] = []
    with running.api(project) as api:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/runs", params=params).json()
            listed.extend(page["runs"])
            cursor = page["next"]
            if cursor is None:
                break
        sample = next(iter(expected))
        detail = api.get(f"/v1/runs/{sample}").json()
    assert len(listed) == len(expected)
    assert {r["run_id"] for r in listed} == {str(run_id) for run_id in expected}
    assert {r["state"] for r in listed} == {"completed"}
    assert detail["run"]["last_stream_seq"] == 2
    assert [e["event_type"] for e in detail["timeline"]] == [
        "ingress.message_received",
        "run.started",
        "run.completed",
    ]


def _timeline_values(row: asyncpg.Record) -> tuple[Any, ...]:
    return tuple(json.loads(row[c]) if c == "summary" else row[c] for c in TIMELINE_COLUMNS)


def _expected_runs(project: str, produced: list[_Produced]) -> dict[Any, dict[str, Any]]:
    expected: dict[Any, dict[str, Any]] = {}
    for message, started, completed in zip(
        produced[0::3], produced[1::3], produced[2::3], strict=True
    ):
        m, s, c = message.envelope, started.envelope, completed.envelope
        expected[m.event_id] = {
            "project_id": project,
            "run_id": m.event_id,
            "state": "completed",
            "last_stream_seq": 2,
            "agent_id": s.payload.agent_id,
            "platform_subject_id": s.payload.platform_subject_id,
            "chat_id": s.payload.chat_id,
            "channel_type": s.payload.channel_type,
            "mode": s.payload.mode,
            "revision": s.payload.revisions[0],
            "started_at": s.occurred_at,
            "completed_at": c.occurred_at,
            "reply": c.payload.reply,
            "suppressed": c.payload.suppressed,
            "error_code": None,
            "trigger_text": m.payload.text,
        }
    return expected

"""`awooop dlq replay` against the real broker and Postgres.

Given a projector whose handler had a bug for one event (it raised a data error, so
the live consumer dead-lettered that event), when the fixed handler replays the
group's entries, then the event applies once, only through that group, nothing goes
back to the source topics, a second replay applies nothing, an entry that fails again
stays failed with its new error, and a dry run writes nothing. Applications are
counted where they happen, by a trigger on the projector's timeline (decision 0051).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from awooop.cli.dlq import DlqCommandError, list_entries, replay_group
from awooop.cli.main import main
from awooop.contracts.events.payloads.run import RunCompleted, RunStarted
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_DLQ_HANDLER
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.kafka.producer import DLQ_REQUEST_BYTES, create_producer
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.processor import BatchContext, envelopes_of
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import Settings, asyncpg_dsn
from awooop.projector.app import spec
from awooop.projector.handlers import ReadModelProjector
from support.apply_counter import applications, install_apply_counter
from support.dlq_reader import dead_letters
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
TOPIC = Topics.RUN_EVENTS.name


class BuggyProjector(ReadModelProjector):
    """The real projector with a since-fixed bug: a data error for one chosen event.

    It takes only its test's project, so the records of other tests sharing the
    broker are neither projected nor dead-lettered under its group."""

    def __init__(self, project: str, bad: uuid.UUID) -> None:
        super().__init__()
        self._project, self._bad = project, bad

    def handles(self, record: RawRecord) -> bool:
        return super().handles(record) and record.header("project_id") == self._project

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        if any(env.event_id == self._bad for env in envelopes_of(records)):
            raise ValueError("handler bug: this event cannot be projected")
        await super().apply(context, records)


def run_event(project: str, run_id: str, seq: int, payload: Any, correlation: str = "") -> Any:
    return new_envelope(
        payload,
        occurred_at=datetime(2026, 4, 1, 12, 0, seq, tzinfo=UTC),
        project_id=project,
        stream_type="run",
        stream_id=run_id,
        stream_seq=seq,
        trace_id=new_trace_id(),
        correlation_id=correlation or run_id,
        causation_id=None,
        actor="service:runtime",
        producer="runtime",
    )


def started(project: str, run_id: str) -> Any:
    subject = f"{project}:telegram:42"
    return run_event(
        project,
        run_id,
        1,
        RunStarted(
            agent_id="demo",
            channel_type="telegram",
            chat_id="42",
            platform_subject_id=subject,
            trigger_event_id=uuid.UUID(run_id),
            mode="shadow",
            revisions=("demo-agent@1:0123456789ab",),
            agent_revision="demo-agent@1:0123456789ab",
        ),
    )


def raw(env: Envelope[Any], value: bytes | None = None) -> RawRecord:
    headers = tuple(record_headers(env, make_traceparent(env.trace_id)))
    return RawRecord(
        TOPIC, 0, 0, env.correlation_id.encode(), value or CODEC.encode(env), headers, 0
    )


@dataclasses.dataclass
class Scene:
    group: str
    other_group: str
    settings: Settings
    admin: asyncpg.Connection
    started: Any
    fixed: Any
    stray: Any
    other: Any


async def _highwaters(settings: Settings) -> dict[Any, int]:
    async with LogReader(settings.kafka, partitions_of(spec().topics)) as reader:
        await reader.read_all(within=30)
        return dict(reader.highwaters)


Origin = tuple[str, int, int]


async def _state(admin: asyncpg.Connection, group: str) -> dict[Origin, asyncpg.Record]:
    """The group's replay states by origin (topic, partition, offset): offsets alone
    repeat across partitions."""
    if await admin.fetchval("SELECT to_regclass('awooop_ops.dlq_replays')") is None:
        return {}
    rows = await admin.fetch(
        "SELECT * FROM awooop_ops.dlq_replays WHERE consumer_group = $1", group
    )
    return {(r["origin_topic"], r["origin_partition"], r["origin_offset"]): r for r in rows}


@pytest.fixture(scope="module")
async def scene(kafka_ready: StackUrls) -> AsyncIterator[Scene]:
    """Dead letters of a buggy projector's group, one of another group, one whose value
    was dropped; the buggy projector stopped (the fix is the replay)."""
    admin = await asyncpg.connect(asyncpg_dsn(kafka_ready.database))
    await migrated(kafka_ready.database, spec())
    await install_apply_counter(admin)
    project = unique("dq")
    run_id = str(new_event_id())
    first = started(project, run_id)
    fixed = run_event(project, run_id, 2, RunCompleted(reply="all green", suppressed=True))
    stray = run_event(
        project, run_id, 3, RunCompleted(reply="x", suppressed=True), f"{project}-no-run"
    )
    other = started(project, str(new_event_id()))
    group, other_group = f"awooop.projector.{unique('replay')}", f"awooop.projector.{unique('o')}"
    buggy = dataclasses.replace(
        spec(), group=group, processor=lambda _runner: BuggyProjector(project, fixed.event_id)
    )
    settings = kafka_ready.settings()
    runner = ServiceRunner(buggy, settings)
    await runner.start()
    producer = create_producer(settings.kafka, max_request_size=DLQ_REQUEST_BYTES)
    await producer.start()
    try:
        for env in (first, fixed, stray):
            record = raw(env)
            await producer.send_and_wait(
                TOPIC, record.value, key=record.key, headers=list(record.headers)
            )
        await wait_for(lambda: _count(kafka_ready, group, 2), within=60, message="two dead letters")
        await wait_for(
            lambda: _applied(admin, first.event_id), within=30, message="the run started"
        )
        # Another group's entry of an event never applied, and one without its value.
        await DeadLetters(producer, other_group).send(
            topic=TOPIC,
            partition=0,
            offset=10**9,
            code=E_DLQ_HANDLER.code,
            error="other",
            record=raw(other),
        )
        await DeadLetters(producer, group).send(
            topic=TOPIC,
            partition=0,
            offset=10**9 + 1,
            code=E_DLQ_HANDLER.code,
            error="big",
            record=raw(other, b"x" * (MAX_RECORD_BYTES + 1)),
        )
    finally:
        await producer.stop()
        await runner.stop()
    admin_settings = dataclasses.replace(settings, database_url=kafka_ready.database)
    yield Scene(group, other_group, admin_settings, admin, first, fixed, stray, other)
    await admin.close()


async def _count(urls: StackUrls, group: str, n: int) -> bool:
    return len(await dead_letters(urls.kafka, group)) >= n


async def _applied(admin: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    return (await applications(admin, {event_id}))[event_id] == 1


async def _replay(scene: Scene, *, dry_run: bool = False) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await replay_group(scene.settings, scene.group, None, dry_run=dry_run, out=lines.append)
    return code, lines


async def test_a_dry_run_reports_and_writes_nothing(scene: Scene) -> None:
    entries = await dead_letters(scene.settings.kafka.bootstrap, scene.group)
    codes = sorted(e.header("dlq.error.code") for e in entries)
    assert codes == ["E-DLQ-HANDLER", "E-DLQ-HANDLER", "E-DLQ-INVALID"]
    code, lines = await _replay(scene, dry_run=True)
    assert code == 1
    verdicts = [line.split("\t")[0] for line in lines[:-1]]
    assert sorted(v.split(":")[0] for v in verdicts) == ["failed", "would-apply", "would-fail"]
    assert any(v.startswith("would-fail: E-DLQ-INVALID") for v in verdicts)
    assert any(v.startswith("failed: value dropped") for v in verdicts)
    assert "dry run: nothing written" in lines[-1]
    counts = await applications(scene.admin, {scene.fixed.event_id})
    assert counts[scene.fixed.event_id] == 0  # applied inside a rolled-back transaction only
    assert await _state(scene.admin, scene.group) == {}


async def test_the_fixed_handler_applies_the_entry_once_and_only_in_its_group(
    scene: Scene,
) -> None:
    before = await _highwaters(scene.settings)
    code, lines = await _replay(scene)
    assert code == 1  # the stray one fails again and the dropped one cannot be replayed
    verdicts = sorted(line.split("\t")[0].split(":")[0] for line in lines[:-1])
    assert verdicts == ["applied", "failed", "failed"]
    ids = {scene.started.event_id, scene.fixed.event_id, scene.other.event_id}
    counts = await applications(scene.admin, ids)
    assert counts[scene.fixed.event_id] == 1
    assert counts[scene.started.event_id] == 1  # the live consumer's, not replayed
    assert counts[scene.other.event_id] == 0  # another group's entry is never fed here
    state = await _state(scene.admin, scene.group)
    fixed_offset = next(o for o, r in state.items() if r["status"] == "replayed")
    assert (state[fixed_offset]["attempts"], state[fixed_offset]["last_error"]) == (1, None)
    failed = [r for r in state.values() if r["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["last_error"].startswith("E-DLQ-INVALID")
    assert failed[0]["attempts"] == 1
    assert 10**9 + 1 not in state  # the dropped value stays as it was
    assert await _state(scene.admin, scene.other_group) == {}
    assert await _highwaters(scene.settings) == before  # nothing produced to the source

    # Twice: the effect stays once, the failure counts one more attempt.
    code, lines = await _replay(scene)
    assert code == 1
    assert any(line.startswith("skipped: already replayed") for line in lines)
    counts = await applications(scene.admin, {scene.fixed.event_id})
    assert counts[scene.fixed.event_id] == 1
    again = [
        r for r in (await _state(scene.admin, scene.group)).values() if r["status"] == "failed"
    ]
    assert again[0]["attempts"] == 2
    assert again[0]["last_error"].startswith("E-DLQ-INVALID")
    assert await _highwaters(scene.settings) == before

    listed: list[str] = []
    assert await list_entries(scene.settings, scene.group, None, out=listed.append) == 0
    statuses = [line.split("\t")[4] for line in listed[1:]]
    assert sorted(s.split(" ")[0] for s in statuses) == ["failed", "new", "replayed"]
    assert any(s.startswith("failed (2 attempts): E-DLQ-INVALID") for s in statuses)
    assert all(line.split("\t")[1] == scene.group for line in listed[1:])


def test_an_unknown_group_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--group", "awooop.nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("awooop: error: 'awooop.nobody' is no service's consumer group")
    assert "\n" not in err


async def test_an_outage_stops_the_replay_and_marks_nothing(scene: Scene) -> None:
    """A revoked grant is an outage, not poison: as the service's role the write is
    refused (the admin itself could write), the command stops, and nothing is marked."""
    late = started(scene.started.project_id, str(new_event_id()))
    producer = create_producer(scene.settings.kafka)
    await producer.start()
    try:
        await DeadLetters(producer, scene.group).send(
            topic=TOPIC,
            partition=1,
            offset=10**9 + 2,
            code=E_DLQ_HANDLER.code,
            error="late",
            record=raw(late),
        )
    finally:
        await producer.stop()
    await scene.admin.execute("REVOKE INSERT ON projector.timeline FROM awooop_projector")
    try:
        with pytest.raises(DlqCommandError, match="outage while replaying"):
            await _replay(scene)
    finally:
        await scene.admin.execute("GRANT INSERT ON projector.timeline TO awooop_projector")
    assert all(o[2] != 10**9 + 2 for o in await _state(scene.admin, scene.group))
    assert (await applications(scene.admin, {late.event_id}))[late.event_id] == 0
    _code, lines = await _replay(scene)
    assert any(line.startswith("applied") and "@1000000002" in line for line in lines)
    assert (await applications(scene.admin, {late.event_id}))[late.event_id] == 1

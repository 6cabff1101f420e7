"""`awooop audit export | verify` against the real broker and the live projector: a tenant's
events, read from the topics, verify offline, and their checksums equal the live read
models of that tenant; an altered, removed or swapped event fails with its reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from awooop.cli.audit import AuditCommandError, export, verify_bytes
from awooop.cli.main import main
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import RunCompleted, RunStarted
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import spec
from awooop.projector.domain.checksums import Checksums, differences
from awooop.security.signing_keys import KeyRing
from support.contracts import TEST_RING, demo_documents, publish_contracts
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
COMMAND = [sys.executable, "-m", "awooop.cli.main"]
URL_VARS = ("AWOOOP_KAFKA_BOOTSTRAP", "AWOOOP_DATABASE_URL", "AWOOOP_REDIS_URL")


def build_run(project: str, at: datetime, text: str) -> list[Envelope[Any]]:
    """A message, the run it starts and its reply."""
    ingress_id, trace = new_event_id(), new_trace_id()
    run_id, subject = str(ingress_id), f"{project}:telegram:7"

    def event(payload: Any, second: int, stream: tuple[str, str, int], who: str) -> Any:
        return new_envelope(
            payload,
            occurred_at=at + timedelta(seconds=second),
            project_id=project,
            stream_type=stream[0],
            stream_id=stream[1],
            stream_seq=stream[2],
            trace_id=trace,
            correlation_id=run_id,
            actor=f"service:{who}",
            producer=who,
            event_id=ingress_id if who == "ingress" else None,
        )

    message = MessageReceived(
        channel_type="telegram",
        provider_event_id=f"7:{ingress_id.int % 10**9}",
        platform_subject_id=subject,
        chat_id="7",
        text=text,
        display_text=text,
        received_at=at,
        agent_id="demo-agent",
        revisions=(),
    )
    started = RunStarted(
        agent_id="demo",
        channel_type="telegram",
        chat_id="7",
        platform_subject_id=subject,
        trigger_event_id=ingress_id,
        mode="shadow",
        revisions=("demo-agent@1:0123456789ab",),
        agent_revision="demo-agent@1:0123456789ab",
    )
    return [
        event(message, 0, ("inbound", f"{project}:telegram:7", 1), "ingress"),
        event(started, 1, ("run", run_id, 1), "runtime"),
        event(RunCompleted(reply=f"re: {text}", suppressed=True), 2, ("run", run_id, 2), "runtime"),
    ]


async def send(producer: AIOKafkaProducer, envelopes: Sequence[Envelope[Any]]) -> list[Any]:
    sent = []
    for env in envelopes:
        if env.event_type.startswith("ingress."):
            topic, key = Topics.INGRESS_EVENTS.name, env.payload.platform_subject_id
        else:
            topic, key = Topics.RUN_EVENTS.name, env.correlation_id
        headers = record_headers(env, make_traceparent(env.trace_id))
        sent.append(
            await producer.send_and_wait(
                topic, CODEC.encode(env), key=key.encode(), headers=headers
            )
        )
    return sent


async def projected(pool: asyncpg.Pool, sent: Sequence[Any]) -> None:
    """Wait until the live projector's stored offsets are past every sent record."""

    async def past_all() -> bool:
        rows = await pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets WHERE consumer_group = $1",
            spec().consumer_group,
        )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((m.topic, m.partition), 0) > m.offset for m in sent)

    await wait_for(past_all, within=60, message="the projector to pass the sent records")


class Populated:
    """Two tenants' runs, projected by the live projector."""

    def __init__(self, runs: dict[str, list[list[Envelope[Any]]]], sent: dict[str, int]) -> None:
        self.runs = runs
        self.sent = sent


@pytest.fixture(scope="module")
async def populated(kafka_ready: StackUrls) -> AsyncIterator[Populated]:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(kafka_ready.settings().kafka, client_id="audit-test")
    await producer.start()
    try:
        at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
        first, second = unique("au"), unique("av")
        runs = {
            first: [build_run(first, at, "disk?"), build_run(first, at, "cpu?")],
            second: [build_run(second, at, "memory?")],
        }
        stray = runs[first][0][2].model_copy(
            update={"event_id": new_event_id(), "correlation_id": f"{first}-no-run"}
        )
        records = [
            *await send(producer, [e for run in runs[first] for e in run]),
            *await send(producer, runs[first][0]),  # redelivered: new offsets, same events
            *await send(producer, [stray]),  # of no run: the live projector dead-letters it
            *await send(producer, [e for run in runs[second] for e in run]),
        ]
        assert runner.pool is not None
        await projected(runner.pool, records)
        yield Populated(runs, {first: 6 + 3 + 1, second: 3})
    finally:
        await producer.stop()
        await runner.stop()


async def live_checksums(database: str, project: str) -> Checksums:
    """The live read models' checksums, of `project` only."""
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        live = await schema_checksums(conn, "projector")
    finally:
        await conn.close()
    only = Checksums()
    for table, per_project in live.tables.items():
        only.tables[table] = {p: d for p, d in per_project.items() if p == project}
    return only


def offline_env(home: Path) -> dict[str, str]:
    """No URL anywhere, and a home with no stack.json: nothing to reach."""
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    env["AWOOOP_HOME"] = str(home)
    return env


def awooop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in a child process with `env` only."""
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def summary_of(text: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(text.splitlines()[-1])
    return summary


async def test_a_whole_tenant_export_verifies_offline_and_equals_the_live_read_models(
    populated: Populated, kafka_ready: StackUrls, tmp_path: Path
) -> None:
    project = next(iter(populated.runs))
    out = tmp_path / "audit.jsonl"
    env = offline_env(tmp_path / "nowhere") | {"AWOOOP_KAFKA_BOOTSTRAP": kafka_ready.kafka}
    exported = await asyncio.to_thread(
        awooop, env, "audit", "export", "--project", project, "--out", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    assert f"exported {populated.sent[project]} events of project {project}" in exported.stderr

    verified = await asyncio.to_thread(
        awooop, offline_env(tmp_path / "nowhere"), "audit", "verify", str(out)
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith(f"OK: {populated.sent[project]} events of project {project}")
    assert "9 folded (0 not projected, 0 undecodable, 1 of no run)" in verified.stdout

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    events = lines[:-1]
    assert {dict(e["headers"])["project_id"] for e in events} == {project}
    assert [(e["topic"], e["partition"], e["offset"]) for e in events] == sorted(
        (e["topic"], e["partition"], e["offset"]) for e in events
    )
    sent_ids = {str(e.event_id) for run in populated.runs[project] for e in run}
    assert sent_ids <= {json.loads(e["value"])["event_id"] for e in events}

    claimed = Checksums.from_json(lines[-1]["checksums"])
    live = await live_checksums(kafka_ready.database, project)
    assert (live.table_total("runs").rows, live.table_total("timeline").rows) == (2, 6)
    assert differences(claimed, live) == []


async def test_the_second_tenants_export_equals_its_live_read_models(
    populated: Populated, kafka_ready: StackUrls
) -> None:
    project = list(populated.runs)[1]
    text, count = await export(kafka_ready.settings().kafka, project)
    assert count == populated.sent[project]
    assert verify_bytes(text.encode()).failures == []
    claimed = Checksums.from_json(summary_of(text)["checksums"])
    live = await live_checksums(kafka_ready.database, project)
    assert live.table_total("runs").rows == 1
    assert differences(claimed, live) == []


async def test_a_run_export_holds_only_that_runs_events(
    populated: Populated, kafka_ready: StackUrls
) -> None:
    project = next(iter(populated.runs))
    run = populated.runs[project][1]
    run_id = run[0].correlation_id
    text, count = await export(kafka_ready.settings().kafka, project, run_id)
    events = [json.loads(line) for line in text.splitlines()[:-1]]
    assert count == len(events) == 3
    assert {json.loads(e["value"])["event_id"] for e in events} == {str(e.event_id) for e in run}
    result = verify_bytes(text.encode())
    assert result.failures == []
    assert summary_of(text)["run_id"] == run_id
    assert result.fold.checksums.table_total("runs").rows == 1


def verify_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    status = main(["audit", "verify", str(path)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


async def test_an_altered_removed_or_swapped_event_fails_verify_with_its_reason(
    populated: Populated,
    kafka_ready: StackUrls,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = next(iter(populated.runs))
    text, count = await export(kafka_ready.settings().kafka, project)
    lines = text.encode().splitlines()
    summary_line = count + 1

    # One hex digit of line 2's envelope trace_id: no read model uses it.
    altered = list(lines)
    at = altered[1].index(b'trace_id\\":\\"') + len(b'trace_id\\":\\"')
    digit = altered[1][at : at + 1]
    altered[1] = altered[1][:at] + (b"0" if digit != b"0" else b"1") + altered[1][at + 1 :]
    path = tmp_path / "altered.jsonl"
    path.write_bytes(b"\n".join(altered) + b"\n")
    status, out, _ = verify_cli(path, capsys)
    assert status == 1
    assert out[:-1] == [f"{path}: line 2: hash: the line's sha256 does not match its content"]
    assert out[-1] == f"FAILED: 1 checks of {path} did not hold"

    removed = [line for n, line in enumerate(lines) if n != 3]
    path = tmp_path / "removed.jsonl"
    path.write_bytes(b"\n".join(removed) + b"\n")
    status, out, _ = verify_cli(path, capsys)
    assert status == 1
    checks = [line.split(": ")[1:3] for line in out[:-1]]
    assert checks[:2] == [
        [f"line {summary_line - 1}", "count"],
        [f"line {summary_line - 1}", "chain"],
    ]
    # The re-fold lost that record too (its rows, or only a count when it was a duplicate).
    assert {check for _, check in checks[2:]} <= {"checksums", "fold counts"}
    assert "fold counts" in {check for _, check in checks[2:]}

    swapped = list(lines)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    path = tmp_path / "swapped.jsonl"
    path.write_bytes(b"\n".join(swapped) + b"\n")
    status, out, _ = verify_cli(path, capsys)
    assert status == 1
    assert [line.split(": ")[1:3] for line in out[:-1]] == [
        ["line 4", "order"],
        [f"line {summary_line}", "chain"],
    ]

    path = tmp_path / "truncated.jsonl"
    path.write_bytes(b"\n".join(lines)[:-40] + b"\n")
    status, out, err = verify_cli(path, capsys)
    assert (status, out) == (2, [])
    assert err.startswith(f"awooop: error: line {summary_line} is not a JSON object")
    assert len(err.splitlines()) == 1


async def test_a_tenants_contracts_are_exported_and_verified_with_the_key_ring(
    kafka_ready: StackUrls,
) -> None:
    """The export holds the tenant's contract events; their signature checks are part of
    the checksums, so both ends need the ring, and a file without one is refused."""
    project = unique("auc")
    settings = kafka_ready.settings()
    await publish_contracts(settings, project, demo_documents(project))
    ring = KeyRing.from_spec(TEST_RING)
    with pytest.raises(AuditCommandError, match="AWOOOP_CONTRACT_VERIFYING_KEYS"):
        await export(settings.kafka, project)
    text, count = await export(settings.kafka, project, ring=ring)
    assert count == 9  # three contracts: drafted, published, activated
    result = verify_bytes(text.encode(), ring)
    assert result.failures == []
    assert result.fold.checksums.table_total("contract_revisions").rows == 3
    with pytest.raises(AuditCommandError):
        verify_bytes(text.encode())

"""The MCP gateway in tests: requests as the runtime asks them, and the answers read back.

A test module runs the gateway in-process (`ServiceRunner(spec(executor), settings)`)
against the shared broker and Postgres, sends `run.tool_call_requested` and
`run.tool_call_approved` records (`request`, `approved`) with `send`, and reads every
gateway event of its runs from the start of the topic with `answers`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from awooop.contracts.events.payloads.approval import approval_id_of
from awooop.contracts.events.payloads.run import ToolCallApproved, ToolCallRequested
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.mcp_gateway.app import spec
from awooop.mcp_gateway.executor import ToolCallExecutor
from awooop.security.approval_tokens import ApprovalGrant, mint_approval_token
from awooop.security.signing_keys import SigningKey
from support.contracts import demo_agent_ref, publish_contracts
from support.infra import StackUrls, migrated
from support.pipeline import wait_for

CODEC = EnvelopeCodec()
DEMO_SERVER = b"awooop.mcp_gateway.demo_server"


@dataclass
class Gateway:
    runner: ServiceRunner
    executor: ToolCallExecutor
    producer: AIOKafkaProducer
    urls: StackUrls
    tool_revision: str

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.runner.pool is not None
        return self.runner.pool


@asynccontextmanager
async def running_gateway(
    urls: StackUrls,
    documents: Mapping[str, Mapping[str, dict[str, Any]]],
    **settings_changes: Any,
) -> AsyncIterator[Gateway]:
    """The gateway in this process, the contracts of each project in `documents` active
    before it starts (`tool_revision`: the first project's `status-demo`, if any), its
    settings those of `urls` with `settings_changes` (`Settings` fields, as the
    environment would set them: `approval_token_verifying_keys=...`). At the end no demo
    MCP server it spawned outlives it."""
    settings = dataclasses.replace(urls.settings(), **settings_changes)
    refs: dict[str, str] = {}
    for project, project_documents in documents.items():
        published = await publish_contracts(settings, project, dict(project_documents))
        refs = refs or published
    executor = ToolCallExecutor(sweep_interval=0.5)
    runner = ServiceRunner(spec(executor), settings)
    await migrated(urls.database, runner.spec)
    servers_before = demo_servers()
    await runner.start()
    producer = create_producer(settings.kafka, client_id="mcp-gateway-test")
    await producer.start()
    try:
        yield Gateway(runner, executor, producer, urls, refs.get("status-demo", ""))
    finally:
        await producer.stop()
        await runner.stop()
    # Shutting the service down closes its MCP sessions: no demo server outlives it.
    await wait_for(
        lambda: not (demo_servers() - servers_before), message="MCP servers stopped at shutdown"
    )


def request(
    project: str,
    run_id: str,
    call_id: str,
    *,
    tool: str = "status__demo",
    arguments: dict[str, Any] | None = None,
    execute_within: dt.timedelta = dt.timedelta(minutes=5),
    seq: int = 1,
    revision: str | None = None,
) -> Envelope[ToolCallRequested]:
    """A `run.tool_call_requested` of `run_id`, asked by the demo agent's revision 1 unless
    `revision` names another."""
    revision = revision or demo_agent_ref()
    now = dt.datetime.now(dt.UTC)
    return new_envelope(
        ToolCallRequested(
            call_id=call_id,
            tool=tool,
            arguments={"service": "checkout"} if arguments is None else arguments,
            execute_before=now + execute_within,
            revisions=(revision,),
        ),
        occurred_at=now,
        project_id=project,
        stream_type="run",
        stream_id=run_id,
        stream_seq=seq,
        trace_id=new_trace_id(),
        correlation_id=run_id,
        actor="service:runtime",
        producer="runtime",
    )


def approval_token(
    signing_spec: str,
    asked: Envelope[ToolCallRequested],
    action_hash: str,
    *,
    run_id: str | None = None,
    issued_at: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(minutes=10),
) -> tuple[uuid.UUID, str]:
    """The approval of the call `asked` requested (its one approval id) and a token for it
    naming `action_hash`, signed with `signing_spec`, as the approval service grants it;
    `run_id` and `issued_at` bind it to another run or time instead."""
    approval_id = approval_id_of(asked.project_id, asked.payload.call_id)
    issued = (issued_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    grant = ApprovalGrant(
        approval_id=approval_id,
        project_id=asked.project_id,
        run_id=run_id or asked.correlation_id,
        call_id=asked.payload.call_id,
        action_hash=action_hash,
        issued_at=issued,
        expires_at=issued + lifetime,
    )
    return approval_id, mint_approval_token(SigningKey.from_spec(signing_spec), grant)


def approved(
    asked: Envelope[ToolCallRequested],
    approval_id: uuid.UUID,
    token: str,
    *,
    seq: int = 2,
    call_id: str | None = None,
    execute_within: dt.timedelta = dt.timedelta(minutes=5),
) -> Envelope[ToolCallApproved]:
    """The runtime's `run.tool_call_approved` for the call `asked` requested (or for
    `call_id`, on the same run), presenting `token` for `approval_id`."""
    now = dt.datetime.now(dt.UTC)
    return new_envelope(
        ToolCallApproved(
            call_id=call_id or asked.payload.call_id,
            approval_id=approval_id,
            token=token,
            execute_before=now + execute_within,
        ),
        occurred_at=now,
        project_id=asked.project_id,
        stream_type="run",
        stream_id=asked.correlation_id,
        stream_seq=seq,
        trace_id=asked.trace_id,
        correlation_id=asked.correlation_id,
        actor="service:runtime",
        producer="runtime",
    )


async def send(gateway: Gateway, *envelopes: Envelope[Any]) -> None:
    for envelope in envelopes:
        await gateway.producer.send_and_wait(
            Topics.RUN_EVENTS.name,
            CODEC.encode(envelope),
            key=envelope.correlation_id.encode(),
            headers=record_headers(envelope, make_traceparent(envelope.trace_id)),
        )


async def answers(
    urls: StackUrls,
    run_ids: set[str],
    done: Callable[[list[Envelope[Any]]], bool],
    *,
    within: float = 30.0,
    settle: float = 1.5,
) -> list[Envelope[Any]]:
    """Every gateway event of `run_ids`, read from the beginning until `done` holds, then
    for `settle` seconds more so that a duplicate answer would be seen too."""
    consumer = AIOKafkaConsumer(bootstrap_servers=urls.kafka, enable_auto_commit=False)
    await consumer.start()
    topic = Topics.GATEWAY_EVENTS
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        found: list[Envelope[Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        settled_at: float | None = None
        while settled_at is None or loop.time() < settled_at:
            if settled_at is None and loop.time() > deadline:
                raise AssertionError(f"timed out waiting for gateway answers, saw {found}")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    envelope = CODEC.decode(record.value)
                    if envelope.correlation_id in run_ids:
                        assert record.key == envelope.correlation_id.encode()
                        found.append(envelope)
            if settled_at is None and done(found):
                settled_at = loop.time() + settle
        return found
    finally:
        await consumer.stop()


def of_call(found: list[Envelope[Any]], call_id: str) -> list[Envelope[Any]]:
    return [e for e in found if e.stream_id == call_id]


def assert_answers(envelope: Envelope[Any], asked: Envelope[ToolCallRequested]) -> None:
    assert envelope.stream_type == "tool_call"
    assert envelope.stream_id == asked.payload.call_id
    assert envelope.stream_seq == 1
    assert envelope.project_id == asked.project_id
    assert envelope.correlation_id == asked.correlation_id
    assert envelope.causation_id == str(asked.event_id)
    assert envelope.trace_id == asked.trace_id
    assert (envelope.producer, envelope.actor) == ("mcp_gateway", "service:mcp_gateway")


def demo_servers() -> set[int]:
    """Demo MCP servers spawned by this process (children whose command line names it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and DEMO_SERVER in cmdline:
            found.add(int(entry.name))
    return found

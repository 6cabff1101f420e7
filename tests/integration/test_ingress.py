"""Ingress against the session stack: inbound records in, one ingress.message_received per
new message out, duplicates absorbed, and bad records in the DLQ with their cause.

Every test drives the real service runner in-process. The runner always provisions the
schema `ingress` and the group `awooop.ingress`, shared across tests, so each test keeps
to its own project id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, RecordMetadata, TopicPartition

from awooop.cli.dlq import replay_group
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.dead_letter import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_VALUE_SHA256,
)
from awooop.contracts.records.envelope import is_valid_trace_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, read_headers, trace_id_of
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.contracts.reader import ContractReader
from awooop.infra.kafka.producer import create_producer, partition_for
from awooop.infra.kafka.records import RawRecord
from awooop.infra.runner import ServiceRunner
from awooop.ingress.app import spec
from awooop.ingress.handlers import IngressProcessor
from support.contracts import bot_of, demo_documents, publish_contracts
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

INBOUND = Topics.CHANNEL_INBOUND.name
EVENTS = Topics.INGRESS_EVENTS.name
GROUP = "awooop.ingress"
CODEC = EnvelopeCodec()


def _inbound(
    project: str,
    update_id: int,
    *,
    user: int = 4242,
    chat: int = -100777,
    text: str = "status of prod?",
    traceparent: str | None = None,
    **changes: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "project_id": project,
        "channel_type": "telegram",
        "provider_event_id": f"{bot_of(project)}:{update_id}",
        "received_at": "2025-03-01T12:00:00.250Z",
        "payload": {
            "update_id": update_id,
            "message": {
                "message_id": update_id + 1,
                "date": 1740830400,
                "chat": {"id": chat, "type": "supergroup", "title": "ops"},
                "from": {"id": user, "is_bot": False, "first_name": "Ada"},
                "text": text,
            },
        },
    }
    if traceparent is not None:
        record["traceparent"] = traceparent
    record.update(changes)
    return record


def _item(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """The record's value and its key, `project_id:provider_event_id`."""
    key = f"{record['project_id']}:{record['provider_event_id']}"
    return json.dumps(record).encode(), key.encode()


async def _produce(
    urls: StackUrls, items: list[tuple[bytes, bytes]], partition: int | None = None
) -> list[RecordMetadata]:
    producer = create_producer(urls.settings().kafka)
    await producer.start()
    try:
        return [
            await producer.send_and_wait(INBOUND, value, key=key, partition=partition)
            for value, key in items
        ]
    finally:
        await producer.stop()


async def _bound(urls: StackUrls, project: str) -> dict[str, str]:
    """Activate the demo agent and a binding of the project's own bot; their refs."""
    return await publish_contracts(urls.settings(), project, demo_documents(project))


@asynccontextmanager
async def _running_ingress(urls: StackUrls) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(spec(), urls.settings())
    await migrated(urls.database, runner.spec)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def _settled(runner: ServiceRunner, sent: list[RecordMetadata]) -> None:
    """Wait until ingress committed past every sent record and the relay published it all."""
    assert runner.consumer is not None
    assert runner.consumer.consumer is not None
    consumer = runner.consumer.consumer
    for meta in sent:
        tp = TopicPartition(meta.topic, meta.partition)

        async def past(tp: TopicPartition = tp, offset: int = meta.offset) -> bool:
            return (await consumer.committed(tp) or 0) > offset

        await wait_for(past, message=f"ingress to commit past {tp} offset {meta.offset}")
    assert runner.pool is not None
    pool = runner.pool
    await wait_for(
        lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), message="the outbox drained"
    )


async def _read_all(
    urls: StackUrls, topic: str, keep: Callable[[ConsumerRecord], bool]
) -> list[ConsumerRecord]:
    """Every record of `topic` that `keep` accepts, read from the start to the high watermarks."""
    consumer = AIOKafkaConsumer(bootstrap_servers=urls.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(Topics.INGRESS_EVENTS.partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        found: list[ConsumerRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            found.extend(r for records in batch.values() for r in records if keep(r))
            ends = [consumer.highwater(tp) for tp in tps]
            positions = [await consumer.position(tp) for tp in tps]
            if all(
                end is not None and pos >= end for pos, end in zip(positions, ends, strict=True)
            ):
                return found
            assert loop.time() < deadline, f"{topic} not read to its end"
    finally:
        await consumer.stop()


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


async def _events_of(urls: StackUrls, project: str) -> list[ConsumerRecord]:
    return await _read_all(urls, EVENTS, lambda r: _headers(r).get("project_id") == project)


async def _dead_letters_of(urls: StackUrls, project: str) -> list[ConsumerRecord]:
    def ours(record: ConsumerRecord) -> bool:
        headers = _headers(record)
        return headers.get(DLQ_HEADER_CONSUMER_GROUP) == GROUP and (record.key or b"").startswith(
            f"{project}:".encode()
        )

    return await _read_all(urls, Topics.DLQ.name, ours)


async def test_one_update_becomes_one_message_received_with_subject_chat_text_and_key(
    kafka_ready: StackUrls,
) -> None:
    project = unique("p")
    refs = await _bound(kafka_ready, project)
    trace_id = new_trace_id()
    record = _inbound(project, 501, user=4242, chat=-100777, traceparent=make_traceparent(trace_id))
    sent = await _produce(kafka_ready, [_item(record)])

    async with _running_ingress(kafka_ready) as runner:
        await _settled(runner, sent)
        assert runner.pool is not None
        subjects = await runner.pool.fetch(
            "SELECT platform_subject_id, channel_type, first_seen_event_id FROM subjects "
            "WHERE project_id = $1",
            project,
        )
        claimed = await runner.pool.fetch(
            "SELECT provider_event_id, event_id FROM provider_events WHERE project_id = $1",
            project,
        )

    events = await _events_of(kafka_ready, project)
    assert len(events) == 1
    event = events[0]
    envelope = CODEC.decode(event.value)
    assert envelope.event_type == "ingress.message_received"
    assert envelope.project_id == project
    assert (envelope.stream_type, envelope.stream_id, envelope.stream_seq) == (
        "inbound",
        f"{project}:telegram:{bot_of(project)}:501",
        1,
    )
    assert envelope.correlation_id == str(envelope.event_id)
    assert envelope.causation_id is None
    assert envelope.trace_id == trace_id
    assert (envelope.producer, envelope.actor) == ("ingress", "service:ingress")
    payload = envelope.payload
    assert payload.channel_type == "telegram"
    assert payload.provider_event_id == f"{bot_of(project)}:501"
    assert payload.platform_subject_id == f"{project}:telegram:4242"
    assert payload.chat_id == "-100777"
    assert payload.text == "status of prod?"
    assert payload.received_at.isoformat() == "2025-03-01T12:00:00.250000+00:00"
    assert (payload.agent_id, payload.revisions) == ("demo-agent", (refs["telegram"],))

    assert event.key == f"{project}:{project}:telegram:4242".encode()
    assert event.partition == partition_for(event.key, Topics.INGRESS_EVENTS.partitions)
    headers = read_headers(event.headers)
    assert headers.event_type == "ingress.message_received"
    assert headers.schema_version == 3
    assert headers.event_id == str(envelope.event_id)
    assert headers.project_id == project
    assert headers.traceparent is not None
    assert trace_id_of(headers.traceparent) == trace_id

    assert [tuple(r) for r in subjects] == [
        (f"{project}:telegram:4242", "telegram", envelope.event_id)
    ]
    assert [tuple(r) for r in claimed] == [(f"{bot_of(project)}:501", envelope.event_id)]


async def test_the_same_update_twice_in_a_batch_and_again_later_yields_one_event(
    kafka_ready: StackUrls,
) -> None:
    project = unique("p")
    await _bound(kafka_ready, project)
    repeated = _item(_inbound(project, 601, text="first"))
    untraced = _item(_inbound(project, 602, user=5151, text="second"))
    # Sent before the service starts: its first fetch holds both copies, on one partition.
    sent = await _produce(kafka_ready, [repeated, repeated, untraced])
    assert sent[0].partition == sent[1].partition
    assert sent[1].offset == sent[0].offset + 1

    async with _running_ingress(kafka_ready) as runner:
        await _settled(runner, sent)
        later = await _produce(kafka_ready, [repeated])
        await _settled(runner, later)

        # Two copies inside one batch, through the processor itself: one event.
        assert runner.pool is not None
        assert runner.contracts is not None
        processor = IngressProcessor(runner.contracts)
        value, key = _item(_inbound(project, 603, text="third"))
        copies = [
            processor.decode(RawRecord(INBOUND, 0, offset, key, value, (), 0))
            for offset in (900, 901)
        ]
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, copies)
        assert (processor.accepted, processor.duplicates) == (1, 1)
        # The same record again (a redelivery): its position has its outcome already.
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, copies[:1])
        assert (processor.accepted, processor.duplicates) == (1, 1)
        # A third copy at a position of its own: one more duplicate.
        third = processor.decode(RawRecord(INBOUND, 0, 902, key, value, (), 0))
        async with runner.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, [third])
        assert (processor.accepted, processor.duplicates) == (1, 2)
        assert runner.relay is not None
        runner.relay.wake()
        pool = runner.pool
        await wait_for(
            lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), message="relay published"
        )
        subjects = await runner.pool.fetchval(
            "SELECT count(*) FROM subjects WHERE project_id = $1", project
        )

    everything = [CODEC.decode(r.value) for r in await _events_of(kafka_ready, project)]
    events = [e for e in everything if e.event_type == "ingress.message_received"]
    duplicates = [e for e in everything if e.event_type == "ingress.duplicate_received"]
    first = {e.payload.provider_event_id: e.event_id for e in events}
    # Two in the first fetch's batch, one produced later, one in a batch of two, one more.
    assert len(duplicates) == 4
    assert all(d.payload.duplicate_of == first[d.payload.provider_event_id] for d in duplicates)
    texts = sorted(e.payload.text for e in events)
    assert texts == ["first", "second", "third"]
    assert len({e.payload.provider_event_id for e in events}) == 3
    second = next(e for e in events if e.payload.text == "second")
    assert is_valid_trace_id(second.trace_id)  # no traceparent: ingress starts the trace
    assert subjects == 2  # users 4242 and 5151, each provisioned once


async def test_invalid_records_go_to_the_dlq_with_their_cause_and_the_next_one_flows(
    kafka_ready: StackUrls,
) -> None:
    """Every kind of bad input: its bytes in the DLQ with the cause, an
    `ingress.inbound_rejected` event with the same code and reason (what the API shows),
    and the good record behind them on the same partition still becomes its message."""
    project = unique("p")
    await _bound(kafka_ready, project)
    valid = _inbound(project, 701, text="still flowing")
    unknown_channel = _inbound(project, 702, channel_type="whatsapp")
    no_id = _inbound(project, 703)
    del no_id["provider_event_id"]
    not_object = _inbound(project, 706, payload=["update", 706])
    wrong_id = _inbound(project, 704, provider_event_id=f"{bot_of(project)}:7040")
    unbound_chat = _inbound(project, 705, chat=-1)
    unbound_chat["provider_event_id"] = f"{bot_of(project + '-unbound')}:705"
    poison: list[tuple[tuple[bytes, bytes], str, str]] = [
        ((b"{not json", f"{project}:garbage".encode()), "E-INBOUND-INVALID", "not JSON"),
        (
            (b'{"project_id": "\xff\xfe"}', f"{project}:latin".encode()),
            "E-INBOUND-INVALID",
            "UTF-8",
        ),
        (_item(wrong_id), "E-INBOUND-INVALID", "does not end in ':704'"),
        (_item(unknown_channel), "E-INBOUND-INVALID", "channel_type"),
        (
            (json.dumps(no_id).encode(), f"{project}:no-id".encode()),
            "E-INBOUND-INVALID",
            "provider_event_id",
        ),
        (_item(not_object), "E-INBOUND-INVALID", "payload"),
        (_item(unbound_chat), "E-INBOUND-UNBOUND", "no active channel_binding"),
        # The consumer refuses an over-size record before any decoder sees it.
        ((b" " * (MAX_RECORD_BYTES + 1), f"{project}:huge".encode()), "E-DLQ-OVERSIZE", "bytes"),
    ]
    # Everything on the valid record's partition, poison first: the partition must flow on.
    value, key = _item(valid)
    partition = partition_for(key, Topics.CHANNEL_INBOUND.partitions)
    sent = await _produce(kafka_ready, [item for item, _, _ in poison] + [(value, key)], partition)
    assert [m.offset for m in sent] == list(range(sent[0].offset, sent[0].offset + len(sent)))

    async with _running_ingress(kafka_ready) as runner:
        await _settled(runner, sent)

    events = [CODEC.decode(r.value) for r in await _events_of(kafka_ready, project)]
    messages = [e for e in events if e.event_type == "ingress.message_received"]
    assert [e.payload.text for e in messages] == ["still flowing"]
    rejections = {e.payload.offset: e for e in events if e.event_type == "ingress.inbound_rejected"}
    assert sorted(rejections) == [m.offset for m in sent[:-1]]
    for meta, ((_, key), code, reason) in zip(sent, poison, strict=False):
        rejected = rejections[meta.offset]
        assert (rejected.payload.code, rejected.payload.partition) == (code, meta.partition)
        assert reason in rejected.payload.reason
        assert rejected.payload.record_key == key.decode()
        assert rejected.stream_id == f"record:{meta.partition}:{meta.offset}:{meta.timestamp}"

    entries = await _dead_letters_of(kafka_ready, project)
    by_offset = {int(_headers(e)[DLQ_HEADER_ORIGIN_OFFSET]): e for e in entries}
    assert sorted(by_offset) == [m.offset for m in sent[:-1]]
    for meta, (item, code, reason) in zip(sent, poison, strict=False):
        entry = by_offset[meta.offset]
        headers = _headers(entry)
        assert headers[DLQ_HEADER_ORIGIN_TOPIC] == INBOUND
        assert headers[DLQ_HEADER_ERROR_CODE] == code
        assert reason in headers[DLQ_HEADER_ERROR]
        if code == "E-DLQ-OVERSIZE":  # too large to travel: its digest stands for it
            assert entry.value is None
            assert headers[DLQ_HEADER_VALUE_SHA256] == hashlib.sha256(item[0]).hexdigest()
        else:
            assert entry.value == item[0]  # the original bytes, untouched


async def test_a_record_waiting_before_the_start_is_decided_with_the_binding_already_active(
    kafka_ready: StackUrls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up ordering: the binding and the message both wait on the broker, and the
    contract reader is made slow; the message must still be bound, never refused as
    unbound, because consuming starts only once the reader reached the watermarks."""
    project = unique("p")
    refs = await _bound(kafka_ready, project)
    sent = await _produce(kafka_ready, [_item(_inbound(project, 801, text="bound?"))])
    slow_apply = ContractReader._apply

    async def slowly(reader: ContractReader, batch: Any) -> list[Any]:
        await asyncio.sleep(3.0)  # longer than a consumer group join takes
        return await slow_apply(reader, batch)

    monkeypatch.setattr(ContractReader, "_apply", slowly)
    async with _running_ingress(kafka_ready) as runner:
        await _settled(runner, sent)
        assert runner.contracts is not None
        assert runner.contracts.view.refs()[(project, "telegram")] == refs["telegram"]
        assert runner.pool is not None
        stored = await runner.pool.fetchval(
            "SELECT count(*) FROM contract_revisions WHERE project_id = $1 AND state = 'active'",
            project,
        )
    assert stored == len(refs)
    events = [CODEC.decode(r.value) for r in await _events_of(kafka_ready, project)]
    assert [(e.payload.text, e.payload.revisions) for e in events] == [
        ("bound?", (refs["telegram"],))
    ]
    assert await _dead_letters_of(kafka_ready, project) == []


async def test_an_unbound_record_is_kept_and_replayed_once_its_binding_is_active(
    kafka_ready: StackUrls,
) -> None:
    """A message for a chat no binding covers yet is dead-lettered as unbound, not lost:
    once the binding is active, `awooop dlq replay` turns it into its message (decided
    by the contracts ingress last folded), and a second replay adds nothing."""
    project = unique("p")
    record = _inbound(project, 901, text="anyone there?")
    async with _running_ingress(kafka_ready) as runner:
        sent = await _produce(kafka_ready, [_item(record)])
        await _settled(runner, sent)
        (entry,) = await _dead_letters_of(kafka_ready, project)
        assert _headers(entry)[DLQ_HEADER_ERROR_CODE] == "E-INBOUND-UNBOUND"
        refs = await _bound(kafka_ready, project)
        assert runner.pool is not None
        pool = runner.pool

        async def binding_folded() -> bool:
            found = await pool.fetchval(
                "SELECT count(*) FROM contract_revisions WHERE project_id = $1 "
                "AND contract_id = 'telegram' AND state = 'active'",
                project,
            )
            return bool(found)

        await wait_for(binding_folded, message="ingress to fold the new binding")
    (rejected,) = [CODEC.decode(r.value) for r in await _events_of(kafka_ready, project)]
    assert (rejected.event_type, rejected.payload.code) == (
        "ingress.inbound_rejected",
        "E-INBOUND-UNBOUND",
    )

    admin = dataclasses.replace(kafka_ready.settings(), database_url=kafka_ready.database)
    origin = f"{INBOUND}[{sent[0].partition}]@{sent[0].offset}"
    for attempt in (1, 2):
        lines: list[str] = []
        await replay_group(admin, GROUP, "E-INBOUND-UNBOUND", dry_run=False, out=lines.append)
        (ours,) = [line for line in lines if line.endswith(origin)]
        assert ours.startswith("applied" if attempt == 1 else "skipped"), lines
    async with _running_ingress(kafka_ready) as runner:
        await _settled(runner, [])  # its relay publishes what the replay appended
    events = [CODEC.decode(r.value) for r in await _events_of(kafka_ready, project)]
    # The replayed record is decided again, once: its message follows its rejection.
    events.sort(key=lambda e: e.event_type)
    assert [e.event_type for e in events] == [
        "ingress.inbound_rejected",
        "ingress.message_received",
    ]
    assert (events[1].payload.text, events[1].payload.revisions) == (
        "anyone there?",
        (refs["telegram"],),
    )

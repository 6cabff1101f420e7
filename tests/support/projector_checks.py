"""Producing events where the platform would, waiting for the live projector and reading
what it stored: for read-model tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.settings import asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import spec
from awooop.projector.domain.checksums import Checksums
from support.pipeline import wait_for

_CODEC = EnvelopeCodec()


async def projector_past(pool: asyncpg.Pool, sent: Sequence[Any]) -> None:
    """Wait until the projector's stored offsets pass every record of `sent` (the
    producer's `RecordMetadata`)."""

    async def past_all() -> bool:
        rows = await pool.fetch(
            "SELECT topic, partition, next_offset FROM projector_offsets WHERE consumer_group = $1",
            spec().consumer_group,
        )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        return all(stored.get((m.topic, m.partition), 0) > m.offset for m in sent)

    await wait_for(past_all, within=60, message="the projector to pass the sent records")


async def stored_checksums(admin_url: str, projects: set[str]) -> Checksums:
    """The live read models' digests, of `projects` only."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        every = await schema_checksums(conn, "projector")
    finally:
        await conn.close()
    for table, per_project in every.tables.items():
        every.tables[table] = {p: d for p, d in per_project.items() if p in projects}
    return every


def topic_and_key(envelope: Envelope[Any]) -> tuple[str, bytes]:
    """Where the platform produces an event, and under which key (ARCHITECTURE §3)."""
    kind, p, project = envelope.event_type, envelope.payload, envelope.project_id
    if kind.startswith("ingress."):
        subject = getattr(p, "platform_subject_id", None) or envelope.stream_id
        return Topics.INGRESS_EVENTS.name, f"{project}:{subject}".encode()
    if kind.startswith("budget."):
        return Topics.BUDGET_EVENTS.name, project.encode()
    if kind == "channel.outbound_requested":
        return Topics.CHANNEL_OUTBOUND.name, f"{project}:{p.chat_id}".encode()
    if kind == "channel.delivery_reported":
        return Topics.CHANNEL_DELIVERY.name, f"{project}:{p.chat_id}".encode()
    if kind.startswith("contract."):
        return Topics.CONTRACT_EVENTS.name, f"{project}:{p.contract_id}".encode()
    if kind.startswith("approval."):
        return Topics.APPROVAL_EVENTS.name, str(p.run_id).encode()
    topic = Topics.GATEWAY_EVENTS if kind.startswith("gateway.") else Topics.RUN_EVENTS
    return topic.name, envelope.correlation_id.encode()


async def send_in_order(
    producer: AIOKafkaProducer, envelopes: Sequence[Envelope[Any]]
) -> list[RecordMetadata]:
    """Produce each envelope where the platform would, each acknowledged before the
    next; the records' metadata."""
    sent = []
    for envelope in envelopes:
        topic, key = topic_and_key(envelope)
        headers = record_headers(envelope, make_traceparent(envelope.trace_id))
        sent.append(
            await producer.send_and_wait(topic, _CODEC.encode(envelope), key=key, headers=headers)
        )
    return sent

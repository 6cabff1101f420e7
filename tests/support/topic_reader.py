"""Reading topics from their beginning for assertions: decoded envelopes until a
condition holds, or raw records up to the high watermarks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import EnvelopeDecodeError
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import topic

_CODEC = EnvelopeCodec()


class TopicReader:
    """A group-less reader of every partition of one envelope topic."""

    def __init__(self, bootstrap: str, topic_name: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic(topic_name)
        self._consumer: AIOKafkaConsumer | None = None
        self.seen: list[Envelope[Any]] = []

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
        await self._consumer.start()
        tps = [TopicPartition(self._topic.name, p) for p in range(self._topic.partitions)]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def until(
        self, done: Callable[[list[Envelope[Any]]], bool], *, within: float = 30.0
    ) -> list[Envelope[Any]]:
        """Read on until `done(seen)` holds; fail after `within` seconds."""
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done(self.seen):
            if loop.time() > deadline:
                types = [e.event_type for e in self.seen]
                raise AssertionError(f"timed out on {self._topic.name}; seen {types}")
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    # Shared topics also carry other tests' poison records: skip them.
                    with contextlib.suppress(EnvelopeDecodeError):
                        self.seen.append(_CODEC.decode(record.value))
        return self.seen


async def records_to_end(
    bootstrap: str, tps: Sequence[TopicPartition], *, within: float
) -> tuple[list[ConsumerRecord[bytes, bytes]], dict[TopicPartition, int]]:
    """Every record of `tps` up to the high watermarks seen by the fetches (the embedded
    broker's `end_offsets()` is wrong); call it once producing is over. Returns the
    records, in fetch order, and the high watermarks."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(list(tps))
        for tp in tps:
            consumer.seek(tp, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            fetched = await consumer.getmany(timeout_ms=200, max_records=2000)
            for batch in fetched.values():
                found.extend(batch)
            highwaters = {tp: consumer.highwater(tp) for tp in tps}
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(hw is not None and positions[tp] >= hw for tp, hw in highwaters.items()):
                return found, {tp: hw for tp, hw in highwaters.items() if hw is not None}
            if loop.time() > deadline:
                behind = {str(tp): (positions[tp], hw) for tp, hw in highwaters.items()}
                raise AssertionError(f"partitions not read to their end: {behind}")
    finally:
        await consumer.stop()

"""Reading the DLQ back to its high watermarks, for assertions on what was dead-lettered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from awooop.contracts.records.dead_letter import DLQ_HEADER_CONSUMER_GROUP
from awooop.contracts.registries.topics import Topics


@dataclass(frozen=True)
class DeadLetter:
    headers: dict[str, bytes]
    value: bytes | None

    def header(self, name: str) -> str:
        return self.headers[name].decode()


async def dead_letters(
    bootstrap: str, group: str | None = None, *, within: float = 20.0
) -> list[DeadLetter]:
    """Every DLQ entry (of consumer group `group`, when given), read to the high watermarks
    the fetches report (the embedded broker's `end_offsets()` is wrong)."""
    tps = [TopicPartition(Topics.DLQ.name, p) for p in range(Topics.DLQ.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batch.values():
                for record in records:
                    headers = {k: v or b"" for k, v in record.headers}
                    if group is None or headers.get(DLQ_HEADER_CONSUMER_GROUP) == group.encode():
                        found.append(DeadLetter(headers, record.value))
            marks = {tp: consumer.highwater(tp) for tp in tps}
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(hw is not None and positions[tp] >= hw for tp, hw in marks.items()):
                return found
            if loop.time() > deadline:
                raise AssertionError(f"the DLQ was not read to its end: {marks}")
    finally:
        await consumer.stop()

"""How many records the embedded broker holds, and about how much memory they take.

Tansu's memory storage keeps every record of every topic for as long as it
runs, about 0.9 KB each (ARCHITECTURE §6), so its size is the sum of the high
watermarks over every registry topic. The high watermarks come from fetch
responses: the embedded broker's `end_offsets()` counts batches, not records.

The fetches start past the end of every partition: Tansu answers such a fetch
with no records and the right high watermark (it never reports an
out-of-range offset, STACK.md), so counting moves no record data however much
the broker holds. A full read of the log gives the same sum
(tests/e2e/test_dev_status_memory.py checks both against one broker). Only
the embedded broker is asked; a real cluster would refuse the offset.

Only topics that exist are read, with the partition count the broker reports:
naming a missing topic in a fetch would auto-create it with the wrong count
(STACK.md), and a fresh stack has no topics until the services start.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from awooop.contracts.registries.topics import ALL_TOPICS
from awooop.infra.kafka.admin import admin_client, partition_counts
from awooop.infra.kafka.log_reader import LogReader
from awooop.infra.settings import KafkaSettings

RECORD_BYTES_ESTIMATE = 900
"""Memory per record on the embedded broker, measured (ARCHITECTURE §6)."""

_PAST_THE_END = 2**62


@dataclass(frozen=True)
class BrokerMemory:
    """The records the broker holds and the memory they are estimated to take."""

    records: int

    @property
    def estimated_mb(self) -> float:
        return self.records * RECORD_BYTES_ESTIMATE / 1_000_000

    def over(self, warn_mb: float) -> bool:
        return self.estimated_mb > warn_mb


async def _existing_partitions(settings: KafkaSettings) -> list[TopicPartition]:
    admin = admin_client(settings)
    await admin.start()
    try:
        counts = await partition_counts(admin)
    finally:
        await admin.close()
    registry = {t.name for t in ALL_TOPICS}
    return [
        TopicPartition(name, p) for name, n in sorted(counts.items()) if name in registry
        for p in range(n)
    ]  # fmt: skip


async def broker_memory(settings: KafkaSettings, *, within: float = 10.0) -> BrokerMemory:
    """Sum the high watermarks of every registry topic's partitions.

    Raises `LogNotReadToEnd` when some partition reports none within `within` seconds.
    """
    partitions = await _existing_partitions(settings)
    if not partitions:
        return BrokerMemory(0)
    starts = dict.fromkeys(partitions, _PAST_THE_END)
    async with LogReader(
        settings, partitions, starts=starts, client_id="awooop-dev-status"
    ) as reader:
        async for _batch in reader.batches(within=within):
            pass  # past the end, nothing is ever yielded: the fetches bring the watermarks
        return BrokerMemory(sum(reader.highwaters.values()))

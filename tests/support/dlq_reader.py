"""Reading the DLQ back to its high watermarks, for assertions on what was dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from awooop.contracts.records.dead_letter import DLQ_HEADER_CONSUMER_GROUP
from awooop.contracts.registries.topics import Topics
from support.topic_reader import records_to_end


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
    records, _highwaters = await records_to_end(bootstrap, tps, within=within)
    found: list[DeadLetter] = []
    for record in records:
        headers = {k: v or b"" for k, v in record.headers}
        if group is None or headers.get(DLQ_HEADER_CONSUMER_GROUP) == group.encode():
            found.append(DeadLetter(headers, record.value))
    return found

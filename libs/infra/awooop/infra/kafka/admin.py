"""Topic admin: every registry topic exists with its registry partition count.

Start-up creates what is missing before any client starts, and refuses to
run when an existing topic's partition count differs: a new count remaps
keys, breaking per-key order and every stored offset. Metadata is always
read for *all* topics: naming a topic in a metadata request lets the broker
auto-create it with a partition count of its own choosing.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from awooop.contracts.registries.errors import E_TOPIC_PARTITIONS
from awooop.contracts.registries.topics import ALL_TOPICS, Topic
from awooop.infra.settings import KafkaSettings

_TOPIC_ALREADY_EXISTS = 36


class TopicPartitionMismatch(RuntimeError):
    """An existing topic's partition count differs from the registry (E-TOPIC-PARTITIONS)."""

    code = E_TOPIC_PARTITIONS.code

    def __init__(self, mismatches: dict[str, tuple[int, int]]) -> None:
        listed = ", ".join(
            f"{t} has {have}, registry says {want}" for t, (have, want) in mismatches.items()
        )
        super().__init__(f"{self.code}: partition counts differ: {listed}; refusing to start")
        self.mismatches = mismatches


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap, request_timeout_ms=settings.request_timeout_ms
    )


async def partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Every topic's partition count, from one all-topics metadata request."""
    return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(None)}


def check_partition_counts(counts: dict[str, int], topics: Iterable[Topic] = ALL_TOPICS) -> None:
    """Raise `TopicPartitionMismatch` for any registry topic whose count differs."""
    mismatches = {
        t.name: (counts[t.name], t.partitions)
        for t in topics
        if t.name in counts and counts[t.name] != t.partitions
    }
    if mismatches:
        raise TopicPartitionMismatch(mismatches)


async def ensure_topics(settings: KafkaSettings, topics: Iterable[Topic] = ALL_TOPICS) -> None:
    """Create the missing registry topics, then verify every partition count."""
    wanted = list(topics)
    admin = admin_client(settings)
    await admin.start()
    try:
        counts = await partition_counts(admin)
        missing = [t for t in wanted if t.name not in counts]
        if missing:
            response = await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor=1) for t in missing]
            )
            for name, code, *_rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed with Kafka error {code}")
            counts = await partition_counts(admin)
        check_partition_counts(counts, wanted)
    finally:
        await admin.close()

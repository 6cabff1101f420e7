"""Topic admin: every registry topic exists with its registry partition count and configs.

Start-up creates what is missing before any client starts, and refuses to
run when an existing topic's partition count differs: a new count remaps
keys, breaking per-key order and every stored offset. Metadata is always
read for *all* topics: naming a topic in a metadata request lets the broker
auto-create it with a partition count of its own choosing.

Configs are checked the same way (`E-TOPIC-CONFIG`): the registry's
`TOPIC_CONFIGS` (whole-log retention, delete policy, `max.message.bytes`),
and the replication factor and `min.insync.replicas` from settings. A value
the broker reports and that differs refuses the start, naming the command that
fixes it. A config the broker does not report (the embedded broker answers only
for configs set explicitly) is set at creation and logged as unverified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from awooop.contracts.registries.errors import E_TOPIC_CONFIG, E_TOPIC_PARTITIONS
from awooop.contracts.registries.topics import ALL_TOPICS, TOPIC_CONFIGS, Topic
from awooop.infra.logging import get_logger
from awooop.infra.settings import KafkaSettings

log = get_logger(__name__)

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


class TopicConfigMismatch(RuntimeError):
    """An existing topic's configs differ from the registry and settings (E-TOPIC-CONFIG)."""

    code = E_TOPIC_CONFIG.code

    def __init__(self, refusals: Sequence[str]) -> None:
        super().__init__(f"{self.code}: {'; '.join(refusals)}; refusing to start")
        self.refusals = list(refusals)


def wanted_configs(settings: KafkaSettings) -> dict[str, str]:
    """The configs every registry topic has on this cluster."""
    return {**TOPIC_CONFIGS, "min.insync.replicas": str(settings.min_insync_replicas)}


@dataclass(frozen=True)
class TopicState:
    """What the broker says of one topic: replicas per partition and the configs it reports."""

    replicas: tuple[int, ...]
    configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigCheck:
    """The outcome of comparing topics with what they should be."""

    refusals: list[str]
    unverified: dict[str, list[str]]
    """Per topic, the configs the broker did not report."""


def check_topic_configs(
    states: Mapping[str, TopicState],
    settings: KafkaSettings,
    topics: Iterable[Topic] = ALL_TOPICS,
) -> ConfigCheck:
    """Compare each registry topic the broker has with its wanted configs (pure)."""
    want = wanted_configs(settings)
    refusals: list[str] = []
    unverified: dict[str, list[str]] = {}
    for t in topics:
        state = states.get(t.name)
        if state is None:
            continue
        fewest = min(state.replicas, default=0)
        if fewest != settings.replication_factor:
            refusals.append(
                f"{t.name} has replication factor {fewest}, wanted "
                f"{settings.replication_factor}: reassign its partitions with "
                "kafka-reassign-partitions.sh (or set AWOOOP_KAFKA_REPLICATION_FACTOR to the "
                "cluster's)"
            )
        for name, value in want.items():
            have = state.configs.get(name)
            if have is None:
                unverified.setdefault(t.name, []).append(name)
            elif have != value:
                refusals.append(
                    f"{t.name} has {name}={have}, wanted {value}: kafka-configs.sh "
                    f"--bootstrap-server <broker> --alter --entity-type topics --entity-name "
                    f"{t.name} --add-config {name}={value}"
                )
    return ConfigCheck(refusals, unverified)


def topic_states(
    metadata: Sequence[Mapping[str, Any]], described: Sequence[Any]
) -> dict[str, TopicState]:
    """Topic states from an all-topics metadata answer and DescribeConfigs responses."""
    configs: dict[str, dict[str, str | None]] = {}
    for response in described:
        for error_code, _message, _type, name, entries in response.resources:
            if error_code == 0:
                configs[name] = {entry[0]: entry[1] for entry in entries}
    return {
        t["topic"]: TopicState(
            replicas=tuple(len(p["replicas"]) for p in t["partitions"]),
            configs=configs.get(t["topic"], {}),
        )
        for t in metadata
    }


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


async def drop_empty_topics(settings: KafkaSettings, names: Iterable[str]) -> bool:
    """Delete the topics `names` if none of their partitions ever held a record, and say
    so; delete nothing and return False if one did (or one is gone already).

    On a broker that started empty, such a topic is one a client of a service still
    running asked for before the topics were made, which the broker then made with a
    partition count of its own: nothing is lost by making it again as registered."""
    wanted = sorted(set(names))
    if not wanted:
        return False
    admin = admin_client(settings)
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=settings.request_timeout_ms,
    )
    try:
        await admin.start()
        await reader.start()
        described = {t["topic"]: t for t in await admin.describe_topics(wanted)}
        partitions = [
            TopicPartition(name, p["partition"])
            for name in wanted
            for p in described.get(name, {}).get("partitions", [])
        ]
        if {tp.topic for tp in partitions} != set(wanted):
            return False
        ends = await reader.end_offsets(partitions)
        if any(ends.get(tp, 1) for tp in partitions):
            return False
        await admin.delete_topics(wanted)
        log.warning("empty_topics_dropped", code=E_TOPIC_PARTITIONS.code, topics=wanted)
        return True
    finally:
        await reader.stop()
        await admin.close()


async def ensure_topics(settings: KafkaSettings, topics: Iterable[Topic] = ALL_TOPICS) -> None:
    """Create the missing registry topics with their configs, then verify every partition
    count (`TopicPartitionMismatch`) and config (`TopicConfigMismatch`)."""
    wanted = list(topics)
    configs = wanted_configs(settings)
    admin = admin_client(settings)
    await admin.start()
    try:
        counts = await partition_counts(admin)
        missing = [t for t in wanted if t.name not in counts]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        t.name,
                        t.partitions,
                        replication_factor=settings.replication_factor,
                        topic_configs=configs,
                    )
                    for t in missing
                ]
            )
            for name, code, *_rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed with Kafka error {code}")
        metadata = await admin.describe_topics(None)
        check_partition_counts({t["topic"]: len(t["partitions"]) for t in metadata}, wanted)
        names = [t.name for t in wanted]
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        check = check_topic_configs(topic_states(metadata, described), settings, wanted)
        if check.refusals:
            raise TopicConfigMismatch(check.refusals)
        if check.unverified:
            log.warning(
                "topic_configs_unverified",
                code=E_TOPIC_CONFIG.code,
                detail="the broker does not report these configs; set at creation only",
                configs=sorted({c for cs in check.unverified.values() for c in cs}),
                topics=len(check.unverified),
            )
    finally:
        await admin.close()

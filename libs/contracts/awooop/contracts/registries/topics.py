"""The topic registry: every Kafka topic AwoooP uses, its key, partitions and parties.

No client ever names a topic outside this registry (aiokafka cannot turn topic
auto-creation off), and start-up refuses to run when an existing topic's partition count
differs from :attr:`Topic.partitions` (a new count remaps keys and breaks per-key order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from awooop.contracts.registries import service_names as svc

MAX_RECORD_BYTES = 1_048_576
"""The largest record value accepted anywhere (1 MiB)."""

DEFAULT_PARTITIONS = 12

MAX_MESSAGE_BYTES = MAX_RECORD_BYTES + 64 * 1024
"""Every topic's `max.message.bytes`: one record at the value limit, with its key, headers
and batch overhead (a DLQ entry adds its own headers), fits in a batch of its own."""

TOPIC_CONFIGS: dict[str, str] = {
    "retention.ms": "-1",
    "cleanup.policy": "delete",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
}
"""Configs every registry topic has. The log is kept whole (`retention.ms=-1`): read models
are rebuilt and audits replayed from offset 0. Replication factor and
`min.insync.replicas` are the cluster's, from settings."""

TopicValue = Literal["envelope", "inbound_record", "dead_letter", "broker_epoch"]


@dataclass(frozen=True, slots=True)
class Topic:
    """One registered topic.

    ``producer`` is a service name or one of the markers in ``service_names``
    (``bridges``, ``any_consumer``, ``first_service``); ``value`` says what its records hold.
    """

    name: str
    key: str
    partitions: int
    producer: str
    consumers: tuple[str, ...]
    value: TopicValue = "envelope"


class Topics:
    """The registered topics, as constants (``Topics.RUN_EVENTS.name`` is the topic name)."""

    CHANNEL_INBOUND = Topic(
        "awooop.channel.inbound.v1",
        "project_id:provider_event_id",
        DEFAULT_PARTITIONS,
        svc.BRIDGES,
        (svc.INGRESS,),
        "inbound_record",
    )
    INGRESS_EVENTS = Topic(
        "awooop.ingress.events.v1",
        "project_id:platform_subject_id",
        DEFAULT_PARTITIONS,
        svc.INGRESS,
        (svc.RUNTIME, svc.APPROVAL, svc.PROJECTOR),
    )
    RUN_EVENTS = Topic(
        "awooop.run.events.v1",
        "run_id",
        DEFAULT_PARTITIONS,
        svc.RUNTIME,
        (svc.MCP_GATEWAY, svc.APPROVAL, svc.PROJECTOR),
    )
    GATEWAY_EVENTS = Topic(
        "awooop.gateway.events.v1",
        "run_id",
        DEFAULT_PARTITIONS,
        svc.MCP_GATEWAY,
        (svc.RUNTIME, svc.APPROVAL, svc.PROJECTOR),
    )
    APPROVAL_EVENTS = Topic(
        "awooop.approval.events.v1",
        "run_id",
        DEFAULT_PARTITIONS,
        svc.APPROVAL,
        (svc.RUNTIME, svc.PROJECTOR),
    )
    CHANNEL_OUTBOUND = Topic(
        "awooop.channel.outbound.v1",
        "project_id:chat_id",
        DEFAULT_PARTITIONS,
        svc.RUNTIME,
        (svc.BRIDGES, svc.PROJECTOR),
    )
    CHANNEL_DELIVERY = Topic(
        "awooop.channel.delivery.v1",
        "project_id:chat_id",
        DEFAULT_PARTITIONS,
        svc.BRIDGES,
        (svc.RUNTIME, svc.PROJECTOR),
    )
    CONTRACT_EVENTS = Topic(
        "awooop.contract.events.v1",
        "project_id:contract_id",
        DEFAULT_PARTITIONS,
        svc.APPROVAL,
        (svc.RUNTIME, svc.MCP_GATEWAY, svc.INGRESS, svc.PROJECTOR),
    )
    BUDGET_EVENTS = Topic(
        "awooop.budget.events.v1",
        "project_id",
        DEFAULT_PARTITIONS,
        svc.RUNTIME,
        (svc.MCP_GATEWAY, svc.PROJECTOR),
    )
    # One partition: the epoch is a single, totally ordered fact about the broker.
    BROKER_EPOCH = Topic(
        "awooop.broker.epoch.v1",
        "",
        1,
        svc.FIRST_SERVICE,
        (svc.EVERY_SERVICE,),
        "broker_epoch",
    )
    DLQ = Topic(
        "awooop.dlq.v1",
        "original key",
        DEFAULT_PARTITIONS,
        svc.ANY_CONSUMER,
        (svc.OPERATORS,),
        "dead_letter",
    )


ALL_TOPICS: tuple[Topic, ...] = tuple(
    value for value in vars(Topics).values() if isinstance(value, Topic)
)
"""Every registered topic, in the order of ARCHITECTURE §3."""

_BY_NAME = {entry.name: entry for entry in ALL_TOPICS}


class UnknownTopicError(KeyError):
    """A topic name that is not in the registry."""


def topic(name: str) -> Topic:
    """Look a topic up by name; :class:`UnknownTopicError` for a name outside the registry."""
    try:
        return _BY_NAME[name]
    except KeyError:
        msg = f"topic {name!r} is not in the topic registry"
        raise UnknownTopicError(msg) from None


_GROUP_SERVICE = re.compile(r"[a-z][a-z0-9_]*")


def consumer_group(service: str) -> str:
    """The consumer group of a service: ``awooop.<service>``; ``ValueError`` if malformed."""
    if _GROUP_SERVICE.fullmatch(service) is None:
        msg = f"malformed service name {service!r}"
        raise ValueError(msg)
    return f"awooop.{service}"


def rebuild_group(timestamp: datetime) -> str:
    """The consumer group of a projector rebuild: ``awooop.projector.rebuild.<UTC stamp>``.

    The stamp is ``YYYYMMDDTHHMMSSZ``, so groups sort by start time. Raises ``ValueError``
    for a naive timestamp.
    """
    if timestamp.utcoffset() is None:
        msg = "rebuild timestamp must be timezone-aware"
        raise ValueError(msg)
    stamp = timestamp.astimezone(UTC)
    return f"{consumer_group(svc.PROJECTOR)}.rebuild.{stamp:%Y%m%dT%H%M%SZ}"

"""A broker reset seen by the consumer halts it for good; it never crash-loops.

The break this catches: `OffsetOutOfRangeError` (what a real Kafka answers with
`auto_offset_reset="none"` when the stored offsets are past a replaced log) escaping the
batch loop, so that the process crashes, restarts, and crashes again — or, worse, a reset
policy quietly starting over from the wrong place.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import OffsetOutOfRangeError
from aiokafka.structs import TopicPartition

from awooop.infra.kafka.consumer import BROKER_EPOCH, BatchConsumer
from awooop.infra.readiness import Readiness
from awooop.infra.settings import KafkaSettings

pytestmark = pytest.mark.unit

TP = TopicPartition("awooop.run.events.v1", 3)


class ResetBrokerClient:
    """Stands in for `AIOKafkaConsumer` on a broker whose log was replaced."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.fetches = 0
        self.stopped = False

    async def start(self) -> None:
        return None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topics = topics

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        raise OffsetOutOfRangeError({TP: 1200})

    async def stop(self) -> None:
        self.stopped = True


class NoDeadLetters:
    sent = 0


class NoProcessor:
    name = "probe"


async def test_offset_out_of_range_halts_with_broker_reset_and_returns() -> None:
    readiness = Readiness()
    readiness.started()
    halts: list[str] = []
    clients: list[ResetBrokerClient] = []

    def factory(**config: Any) -> ResetBrokerClient:
        clients.append(ResetBrokerClient(**config))
        return clients[-1]

    consumer = BatchConsumer(
        settings=KafkaSettings(bootstrap="127.0.0.1:1"),
        group="awooop.probe",
        topics=[TP.topic],
        processor=NoProcessor(),  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        dead_letters=NoDeadLetters(),  # type: ignore[arg-type]
        readiness=readiness,
        client_factory=factory,  # type: ignore[arg-type]
        on_halt=halts.append,
    )
    await consumer.start()
    assert clients[0].config["auto_offset_reset"] == "none"

    await consumer.run()  # returns: a halt, not an exception

    assert consumer.halted
    assert clients[0].fetches == 1  # no retry loop against the replaced log
    assert clients[0].stopped  # left the group at once
    assert not readiness.ready
    assert readiness.reasons[BROKER_EPOCH].startswith("E-BROKER-RESET")
    assert len(halts) == 1
    assert "out of range" in halts[0]

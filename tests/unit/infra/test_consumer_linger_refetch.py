"""A rebalance during a busy consumer's linger that hands a partition back to the same
consumer starts it again from its committed offset: the linger's fetch then returns
records the batch already holds. Each must be in the batch once (a record twice in one
batch would be recorded, then seen again as its own duplicate)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from awooop.infra.kafka.consumer import BatchConsumer
from awooop.infra.kafka.records import RawRecord
from awooop.infra.readiness import Readiness
from awooop.infra.settings import KafkaSettings

pytestmark = pytest.mark.unit

TP = TopicPartition("awooop.channel.inbound.v1", 4)
Consumed = namedtuple("Consumed", "topic partition offset key value headers timestamp")


def _consumed(offset: int) -> Consumed:
    return Consumed(TP.topic, TP.partition, offset, b"k", b"v", [], 1_700_000_000_000 + offset)


class RefetchingClient:
    """After a rebalance back to this member, fetching from the committed offset 10."""

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Consumed]]:
        return {TP: [_consumed(offset) for offset in range(10, 16)]}


async def test_records_fetched_again_during_the_linger_join_the_batch_once() -> None:
    consumer = BatchConsumer(
        settings=KafkaSettings(bootstrap="127.0.0.1:1", linger_ms=1),
        group="awooop.probe",
        topics=[TP.topic],
        processor=None,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        dead_letters=None,  # type: ignore[arg-type]
        readiness=Readiness(),
    )
    consumer.consumer = RefetchingClient()  # type: ignore[assignment]
    batch = [RawRecord.of(_consumed(offset)) for offset in range(10, 13)]

    more = await consumer._linger(batch)

    assert [r.offset for r in more] == [13, 14, 15]
    assert consumer.stats.lingers == 1

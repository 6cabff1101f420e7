"""The dead-letter queue: poison records, original bytes, and where they came from."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from awooop.contracts.dead_letter import dead_letter_headers
from awooop.contracts.topics import Topics
from awooop.infra.kafka.records import RawRecord
from awooop.infra.logging import get_logger

log = get_logger(__name__)

DLQ_TOPIC = Topics.DLQ.name


class DeadLetters:
    """Writes DLQ entries for one consumer group and waits for the broker's acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, group: str) -> None:
        self._producer = producer
        self._group = group
        self.sent = 0

    async def send(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        code: str,
        error: str,
        record: RawRecord | None = None,
    ) -> None:
        """Dead-letter one record; `record` is absent when it could not even be fetched."""
        origin = dead_letter_headers(
            origin_topic=topic,
            partition=partition,
            offset=offset,
            consumer_group=self._group,
            error_code=code,
            error=error,
        )
        headers = [*(record.headers if record else ()), *origin]
        await self._producer.send_and_wait(
            DLQ_TOPIC,
            value=record.value if record else None,
            key=record.key if record else None,
            headers=headers,
        )
        self.sent += 1
        log.error(
            "dead_lettered", topic=topic, partition=partition, offset=offset, code=code, error=error
        )

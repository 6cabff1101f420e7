"""The dead-letter queue: poison records, original bytes, and where they came from."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from awooop.contracts.topics import Topics
from awooop.infra.kafka.records import RawRecord
from awooop.infra.logging import get_logger

log = get_logger(__name__)

DLQ_TOPIC = Topics.DLQ.name
DLQ_HEADER_TOPIC = "dlq.origin.topic"
DLQ_HEADER_PARTITION = "dlq.origin.partition"
DLQ_HEADER_OFFSET = "dlq.origin.offset"
DLQ_HEADER_GROUP = "dlq.consumer_group"
DLQ_HEADER_ERROR_CODE = "dlq.error.code"
DLQ_HEADER_ERROR = "dlq.error"
_MAX_ERROR_TEXT = 2_000


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
        origin = [
            (DLQ_HEADER_TOPIC, topic.encode()),
            (DLQ_HEADER_PARTITION, str(partition).encode()),
            (DLQ_HEADER_OFFSET, str(offset).encode()),
            (DLQ_HEADER_GROUP, self._group.encode()),
            (DLQ_HEADER_ERROR_CODE, code.encode()),
            (DLQ_HEADER_ERROR, error[:_MAX_ERROR_TEXT].encode("utf-8", "replace")),
        ]
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

"""The dead-letter queue: poison records, original bytes, and where they came from.

An entry keeps the original key, headers and value, except a value that
cannot travel: one over the record limit is dropped before sending, and a
record the broker refuses for its size or shape is sent again without it
(size, SHA-256 and first bytes in headers). A refusal of one record is
never an outage: retrying it forever would stop its partition.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from awooop.contracts.records.dead_letter import dead_letter_headers, dropped_value_headers
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.kafka.records import RawRecord
from awooop.infra.logging import get_logger

log = get_logger(__name__)

DLQ_TOPIC = Topics.DLQ.name

RECORD_REFUSALS = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)
"""Broker (or producer) answers that refuse one record, not the connection."""


class DeadLetters:
    """Writes DLQ entries for one consumer group and waits for the broker's acknowledgement.

    `sent` counts entries; `by_code` counts them per error code (for metrics).
    """

    def __init__(self, producer: AIOKafkaProducer, group: str) -> None:
        self._producer = producer
        self._group = group
        self.sent = 0
        self.by_code: dict[str, int] = {}

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
        """Dead-letter one record; `record` is absent when it could not even be fetched.

        Raises only what says the broker is unreachable (an outage for the caller).
        """
        origin = dead_letter_headers(
            origin_topic=topic,
            partition=partition,
            offset=offset,
            consumer_group=self._group,
            error_code=code,
            error=error,
        )
        key = record.key if record else None
        # The original's timestamp travels as the entry's own: with partition and offset
        # it names the record, so a replayed entry is the very record that was refused.
        stamp = record.timestamp if record is not None and record.timestamp > 0 else None
        value = record.value if record else None
        own_headers = list(record.headers) if record else []
        if value is not None and len(value) > MAX_RECORD_BYTES:
            own_headers += dropped_value_headers(value)
            value = None
        try:
            await self._producer.send_and_wait(
                DLQ_TOPIC,
                value=value,
                key=key,
                headers=[*own_headers, *origin],
                timestamp_ms=stamp,
            )
        except RECORD_REFUSALS as refused:
            # Keep only what must fit: where it came from, why, and a digest of the value.
            log.warning("dead_letter_refused", topic=topic, offset=offset, error=repr(refused))
            kept = dropped_value_headers(record.value) if record and record.value else []
            await self._producer.send_and_wait(
                DLQ_TOPIC, value=None, key=key, headers=[*kept, *origin], timestamp_ms=stamp
            )
        self.sent += 1
        self.by_code[code] = self.by_code.get(code, 0) + 1
        log.error(
            "dead_lettered", topic=topic, partition=partition, offset=offset, code=code, error=error
        )

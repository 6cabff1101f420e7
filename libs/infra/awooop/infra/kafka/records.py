"""Records as the BatchConsumer hands them to a processor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka.structs import TopicPartition


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One consumed record, bytes untouched."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @classmethod
    def of(cls, record: Any) -> RawRecord:
        """From an aiokafka `ConsumerRecord`."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple((k, v if v is not None else b"") for k, v in record.headers or ()),
            timestamp=record.timestamp,
        )


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record with its decoded body (an envelope, an inbound record, …)."""

    raw: RawRecord
    body: Any


class PoisonRecord(Exception):
    """A record that can never be processed: it goes to the DLQ with `code` and `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason

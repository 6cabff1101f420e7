"""DLQ entries as `awooop dlq` sees them: parsed from their headers, filtered, rebuilt.

Pure: no I/O. An entry on `awooop.dlq.v1` keeps the original key, value and headers
and adds the `dlq.*` headers (`awooop.contracts.records.dead_letter`) that say where
it came from and why. Rebuilding the original record for a replay takes the origin
from those headers and drops every `dlq.*` header, so the handler sees the record
exactly as its consumer fetched it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from awooop.contracts.records.dead_letter import (
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_ORIGIN_PARTITION,
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_VALUE_SHA256,
    DLQ_HEADER_VALUE_SIZE,
)
from awooop.infra.kafka.records import RawRecord

DLQ_PREFIX = "dlq."
"""Every header a dead letter adds starts with this; the original record has none."""


class MalformedDeadLetter(ValueError):
    """A DLQ record without the headers that say where it came from."""


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """One record of `awooop.dlq.v1` and the origin its headers name."""

    dlq_partition: int
    dlq_offset: int
    group: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    code: str
    error: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int

    @property
    def origin(self) -> str:
        """`topic[partition]@offset`, the way operators name a record."""
        return f"{self.origin_topic}[{self.origin_partition}]@{self.origin_offset}"

    @property
    def value_dropped(self) -> bool:
        """True when the entry stands for a value it does not carry (over the size limit,
        or refused by the broker): such an entry can never be replayed."""
        names = {name for name, _ in self.headers}
        return self.value is None and bool(names & {DLQ_HEADER_VALUE_SIZE, DLQ_HEADER_VALUE_SHA256})


def _text(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    # The last occurrence wins: a dead letter's own headers follow the original's.
    found = None
    for key, value in headers:
        if key == name:
            found = value.decode("utf-8", "backslashreplace")
    return found


def _required(headers: Sequence[tuple[str, bytes]], name: str, where: str) -> str:
    value = _text(headers, name)
    if value is None:
        raise MalformedDeadLetter(f"DLQ record {where} has no {name} header")
    return value


def _number(headers: Sequence[tuple[str, bytes]], name: str, where: str) -> int:
    value = _required(headers, name, where)
    if not value.isdigit():
        raise MalformedDeadLetter(f"DLQ record {where}: {name} is {value!r}, not an offset")
    return int(value)


def parse_entry(record: RawRecord) -> DlqEntry:
    """The entry of one DLQ record; `MalformedDeadLetter` when its origin headers are missing."""
    where = f"{record.partition}@{record.offset}"
    headers = record.headers
    return DlqEntry(
        dlq_partition=record.partition,
        dlq_offset=record.offset,
        group=_required(headers, DLQ_HEADER_CONSUMER_GROUP, where),
        origin_topic=_required(headers, DLQ_HEADER_ORIGIN_TOPIC, where),
        origin_partition=_number(headers, DLQ_HEADER_ORIGIN_PARTITION, where),
        origin_offset=_number(headers, DLQ_HEADER_ORIGIN_OFFSET, where),
        code=_text(headers, DLQ_HEADER_ERROR_CODE) or "",
        error=_text(headers, DLQ_HEADER_ERROR) or "",
        key=record.key,
        value=record.value,
        headers=headers,
        timestamp=record.timestamp,
    )


def parse_entries(records: Iterable[Any]) -> list[DlqEntry]:
    """Entries of aiokafka records, in DLQ partition and offset order."""
    entries = [parse_entry(RawRecord.of(record)) for record in records]
    return sorted(entries, key=lambda e: (e.dlq_partition, e.dlq_offset))


def select(
    entries: Iterable[DlqEntry], group: str | None = None, code: str | None = None
) -> list[DlqEntry]:
    """The entries of consumer group `group` and error code `code` (None: any)."""
    return [
        e
        for e in entries
        if (group is None or e.group == group) and (code is None or e.code == code)
    ]


def original_record(entry: DlqEntry) -> RawRecord:
    """The record as its consumer fetched it: origin topic, partition and offset, key,
    value and the original headers (every `dlq.*` header dropped)."""
    return RawRecord(
        topic=entry.origin_topic,
        partition=entry.origin_partition,
        offset=entry.origin_offset,
        key=entry.key,
        value=entry.value,
        headers=tuple((k, v) for k, v in entry.headers if not k.startswith(DLQ_PREFIX)),
        timestamp=entry.timestamp,
    )

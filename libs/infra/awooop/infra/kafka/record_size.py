"""The size of one Kafka record as the platform counts it against `MAX_RECORD_BYTES`.

The append check and the relay both measure with `record_size`, so a record
the event store accepts is one the relay publishes, and one byte more is
refused by both. The count is the bytes a producer puts on the wire for the
record's payload: the key, the value, and each header's name (UTF-8) and
value. Framing (varints, batch headers) is left out: it is the broker's
`max.message.bytes` margin, not part of the platform's limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from awooop.contracts.registries.topics import MAX_RECORD_BYTES


def record_size(key: bytes | None, value: bytes, headers: Iterable[tuple[str, bytes]]) -> int:
    """Bytes of key, value and headers (names as UTF-8) of one record."""
    header_bytes = sum(len(name.encode()) + len(data) for name, data in headers)
    return len(value) + len(key or b"") + header_bytes


def within_record_limit(size: int) -> bool:
    """True when a record of `size` bytes (from `record_size`) may be stored and sent."""
    return size <= MAX_RECORD_BYTES

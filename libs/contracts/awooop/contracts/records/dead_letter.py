"""Headers of records on ``awooop.dlq.v1``.

A DLQ record keeps the original key and value bytes untouched; these headers say where
it came from and why it was isolated, so ``awooop dlq replay --group G`` can feed it to
that group's handler only. A value that cannot travel (over the record limit, or refused
by the broker) is dropped instead: its size, SHA-256 and first bytes stay in headers (all
headers are UTF-8 text), so
the entry still names what it stood for and never wedges the consumer that writes it.
"""

from __future__ import annotations

import hashlib

from awooop.contracts.registries.errors import ERROR_CODES

DLQ_HEADER_ORIGIN_TOPIC = "dlq.origin.topic"
DLQ_HEADER_ORIGIN_PARTITION = "dlq.origin.partition"
DLQ_HEADER_ORIGIN_OFFSET = "dlq.origin.offset"
DLQ_HEADER_CONSUMER_GROUP = "dlq.consumer.group"
DLQ_HEADER_ERROR_CODE = "dlq.error.code"
DLQ_HEADER_ERROR = "dlq.error"

DLQ_HEADER_VALUE_SIZE = "dlq.value.size"
DLQ_HEADER_VALUE_SHA256 = "dlq.value.sha256"
DLQ_HEADER_VALUE_HEAD = "dlq.value.head"

VALUE_HEAD_BYTES = 256
"""How many leading bytes of a dropped value its DLQ entry keeps."""


def value_head(value: bytes) -> str:
    """The first ``VALUE_HEAD_BYTES`` of a value as UTF-8 text, other bytes as ``\\xNN``.

    Every DLQ header is UTF-8 text, so any reader (``kcat``, a test, ``awooop dlq list``)
    can print an entry without knowing which headers carry raw bytes.
    """
    return value[:VALUE_HEAD_BYTES].decode("utf-8", errors="backslashreplace")


DLQ_HEADERS: tuple[str, ...] = (
    DLQ_HEADER_ORIGIN_TOPIC,
    DLQ_HEADER_ORIGIN_PARTITION,
    DLQ_HEADER_ORIGIN_OFFSET,
    DLQ_HEADER_CONSUMER_GROUP,
    DLQ_HEADER_ERROR_CODE,
    DLQ_HEADER_ERROR,
)
"""Every header a DLQ record gets on top of the original record's own headers."""

MAX_ERROR_TEXT_BYTES = 4096
"""The error description is cut to this many bytes, so a DLQ record never outgrows its origin."""


def dead_letter_headers(
    *,
    origin_topic: str,
    partition: int,
    offset: int,
    consumer_group: str,
    error_code: str,
    error: str,
) -> list[tuple[str, bytes]]:
    """Build the DLQ headers for one isolated record.

    ``error_code`` must be registered (``KeyError`` otherwise); ``error`` is the human
    reason, cut to ``MAX_ERROR_TEXT_BYTES`` on a character boundary.
    """
    if error_code not in ERROR_CODES:
        msg = f"unregistered error code {error_code!r}"
        raise KeyError(msg)
    if partition < 0 or offset < 0:
        msg = "partition and offset must be >= 0"
        raise ValueError(msg)
    text = error.encode("utf-8")[:MAX_ERROR_TEXT_BYTES].decode("utf-8", errors="ignore")
    return [
        (DLQ_HEADER_ORIGIN_TOPIC, origin_topic.encode()),
        (DLQ_HEADER_ORIGIN_PARTITION, str(partition).encode()),
        (DLQ_HEADER_ORIGIN_OFFSET, str(offset).encode()),
        (DLQ_HEADER_CONSUMER_GROUP, consumer_group.encode()),
        (DLQ_HEADER_ERROR_CODE, error_code.encode()),
        (DLQ_HEADER_ERROR, text.encode()),
    ]


def dropped_value_headers(value: bytes) -> list[tuple[str, bytes]]:
    """The headers that stand for a value a DLQ entry does not carry."""
    return [
        (DLQ_HEADER_VALUE_SIZE, str(len(value)).encode()),
        (DLQ_HEADER_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
        (DLQ_HEADER_VALUE_HEAD, value_head(value).encode()),
    ]

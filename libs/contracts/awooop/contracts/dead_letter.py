"""Headers of records on ``awooop.dlq.v1``.

A DLQ record keeps the original key and value bytes untouched; these headers say where
it came from and why it was isolated, so ``awooop dlq replay --group G`` can feed it to
that group's handler only.
"""

from __future__ import annotations

from awooop.contracts.errors import ERROR_CODES

DLQ_HEADER_ORIGIN_TOPIC = "dlq.origin.topic"
DLQ_HEADER_ORIGIN_PARTITION = "dlq.origin.partition"
DLQ_HEADER_ORIGIN_OFFSET = "dlq.origin.offset"
DLQ_HEADER_CONSUMER_GROUP = "dlq.consumer.group"
DLQ_HEADER_ERROR_CODE = "dlq.error.code"
DLQ_HEADER_ERROR = "dlq.error"

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

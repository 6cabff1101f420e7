"""The append-only event store of a write-side service, with its outbox.

Rules it keeps:

* one writer per aggregate: a write first locks the aggregates' `streams`
  rows in id order (`lock_streams`), then appends at version + 1;
* `(stream_id, stream_seq)` is unique: a writer that lost a race gets
  `VersionConflict` and `with_conflict_retries` reloads and decides again,
  up to a bound past which the conflict counts as an outage;
* every appended position enters `outbox` in the same statement, so the
  relay publishes exactly what committed, as the stored bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import asyncpg

from awooop.contracts.registries.topics import MAX_RECORD_BYTES
from awooop.infra.kafka.record_size import record_size, within_record_limit
from awooop.infra.postgres.errors import ConflictBoundExceeded, EventTooLarge, VersionConflict

T = TypeVar("T")

MAX_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class NewEvent:
    """One event to append: the envelope bytes and where they will be published."""

    event_id: UUID
    stream_type: str
    stream_id: str
    stream_seq: int
    topic: str
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    data: bytes

    def record_size(self) -> int:
        """The record's size as the relay will measure it (`kafka.record_size`)."""
        return record_size(self.key, self.data, self.headers)


@dataclass(frozen=True)
class StoredEvent:
    position: int
    stream_id: str
    stream_seq: int
    data: bytes


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    """Headers as a JSON list of `[name, value]` pairs (values are ASCII by construction)."""
    return json.dumps([[k, v.decode("latin-1")] for k, v in headers], separators=(",", ":"))


def decode_headers(raw: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode("latin-1")) for k, v in json.loads(raw)]


def appending(first: int, where: str = "TRUE") -> str:
    """The CTEs `appended`, `queued` and `versions` of a statement that appends events:
    the eight arrays of `append_arguments` are its parameters `$first` to `$first + 7`,
    and only the events for which `where` holds (over `e.*`) are appended and queued.
    A statement built on them appends, queues and versions in one round trip."""
    p = [f"${n}" for n in range(first, first + 8)]
    return f"""
appended AS (
    INSERT INTO events (event_id, stream_type, stream_id, stream_seq, topic, key, headers, data)
    SELECT e.event_id, e.stream_type, e.stream_id, e.stream_seq, e.topic, e.key, e.headers, e.data
    FROM unnest({p[0]}::uuid[], {p[1]}::text[], {p[2]}::text[], {p[3]}::int[], {p[4]}::text[],
                {p[5]}::bytea[], {p[6]}::jsonb[], {p[7]}::bytea[])
         WITH ORDINALITY
         AS e(event_id, stream_type, stream_id, stream_seq, topic, key, headers, data, ord)
    WHERE {where}
    ORDER BY e.ord
    RETURNING position, stream_id, stream_type, stream_seq
), queued AS (
    INSERT INTO outbox (position) SELECT position FROM appended
), versions AS (
    INSERT INTO streams (stream_id, stream_type, version)
    SELECT stream_id, min(stream_type), max(stream_seq) FROM appended GROUP BY stream_id
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
    WHERE streams.version < excluded.version
)"""


_APPEND = f"WITH {appending(1)} SELECT position FROM appended ORDER BY position"


async def lock_streams(conn: asyncpg.Connection, stream_ids: Sequence[str]) -> dict[str, int]:
    """Lock the streams' rows in id order and return their versions (absent: version 0)."""
    ordered = sorted(set(stream_ids))
    rows = await conn.fetch(
        "SELECT stream_id, version FROM streams WHERE stream_id = ANY($1::text[]) "
        "ORDER BY stream_id FOR UPDATE",
        ordered,
    )
    versions = dict.fromkeys(ordered, 0)
    versions.update({row["stream_id"]: row["version"] for row in rows})
    return versions


async def append(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> list[int]:
    """Append `events` and queue them for the relay, in one statement.

    Raises `VersionConflict` when a `(stream_id, stream_seq)` is taken (the
    transaction is then aborted: retry it whole) and `EventTooLarge` when a
    record would pass the broker's size limit.
    """
    if not events:
        return []
    with version_conflicts():
        rows = await conn.fetch(_APPEND, *append_arguments(events))
    return [row["position"] for row in rows]


def append_arguments(events: Sequence[NewEvent]) -> list[list[object]]:
    """The eight arrays `appending` reads, in its parameters' order; `EventTooLarge`
    when a record would pass the broker's size limit."""
    for event in events:
        size = event.record_size()
        if not within_record_limit(size):
            raise EventTooLarge(
                f"event {event.event_id} is {size} bytes, "
                f"over the {MAX_RECORD_BYTES}-byte record limit"
            )
    return [
        [e.event_id for e in events],
        [e.stream_type for e in events],
        [e.stream_id for e in events],
        [e.stream_seq for e in events],
        [e.topic for e in events],
        [e.key for e in events],
        [encode_headers(e.headers) for e in events],
        [e.data for e in events],
    ]


@contextmanager
def version_conflicts() -> Iterator[None]:
    """Raise `VersionConflict` for a statement that appended at a taken
    `(stream_id, stream_seq)` (the transaction is then aborted: retry it whole)."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name == "events_stream_version":
            raise VersionConflict(_stream_of(error)) from error
        raise


def _stream_of(error: asyncpg.UniqueViolationError) -> str | None:
    detail = getattr(error, "detail", "") or ""
    # "Key (stream_id, stream_seq)=(run-1, 2) already exists."
    if "=(" in detail:
        return detail.split("=(", 1)[1].rsplit(", ", 1)[0]
    return None


async def load_stream(conn: asyncpg.Connection, stream_id: str) -> list[StoredEvent]:
    """Every event of one stream, in version order."""
    rows = await conn.fetch(
        "SELECT position, stream_id, stream_seq, data FROM events "
        "WHERE stream_id = $1 ORDER BY stream_seq",
        stream_id,
    )
    return [StoredEvent(r["position"], r["stream_id"], r["stream_seq"], r["data"]) for r in rows]


async def with_conflict_retries(
    pool: asyncpg.Pool,
    write: Callable[[asyncpg.Connection], Awaitable[T]],
    max_retries: int = MAX_CONFLICT_RETRIES,
) -> T:
    """Run `write` in a transaction; on `VersionConflict` reload and decide again.

    `write` must load its state inside the transaction, so each attempt
    decides on what the winner committed. Past `max_retries` the conflict is
    raised as `ConflictBoundExceeded`, which consumers treat as an outage.
    """
    for _attempt in range(max_retries + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await write(conn)
        except VersionConflict:
            continue
    raise ConflictBoundExceeded(f"version conflicts persisted past {max_retries} retries")

"""Which Postgres failures are outages (retry, never dead-letter) and which are conflicts."""

from __future__ import annotations

import asyncio

import asyncpg


class VersionConflict(Exception):
    """Another writer appended to the stream first: reload and decide again."""

    def __init__(self, stream_id: str | None = None) -> None:
        super().__init__(f"version conflict on stream {stream_id or '?'}")
        self.stream_id = stream_id


class ConflictBoundExceeded(Exception):
    """Version conflicts repeated past their bound: treated as an outage, never as poison."""


class EventTooLarge(ValueError):
    """An event's record would exceed the broker's record-size limit."""


_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator, system
_OUTAGE_SQLSTATES = {
    "55P03",  # lock_not_available
    "57014",  # query_canceled (statement_timeout)
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "25P03",  # idle_in_transaction_session_timeout
}


def is_database_outage(error: BaseException) -> bool:
    """True for errors that say the database is unreachable or busy, not that the input is bad."""
    if isinstance(error, ConflictBoundExceeded):
        return True
    if isinstance(
        error,
        OSError
        | asyncio.TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError,
    ):
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", "") or ""
        return state in _OUTAGE_SQLSTATES or state[:2] in _OUTAGE_SQLSTATE_CLASSES
    return False

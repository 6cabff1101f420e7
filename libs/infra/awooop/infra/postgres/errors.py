"""How a failure is classified: a conflict to retry, poison to isolate, or an outage.

The rule is inverted on purpose: only failures *of the data* are poison — a
value Postgres refuses as data (SQLSTATE classes 22 and 23) or a Python error
a handler raised while reading its input (`ValueError`, which includes
pydantic's `ValidationError` and JSON errors, `LookupError`, `TypeError`,
`ArithmeticError`). Everything else — a read-only node during a failover
(25006), a failed login (28xxx), a missing database (3D000), a revoked
privilege (42501), an admin shutdown (57P01), a timeout, a reset connection,
an error nobody foresaw — is an outage: the consumer pauses, commits nothing
and retries, so no stream is dead-lettered because the database was away.
"""

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


class DatabaseNotWritable(Exception):
    """The probe before poison isolation found the database unfit to judge a record:
    unreachable, read-only, in recovery, or the role unable to write its schema."""


_DATA_SQLSTATE_CLASSES = ("22", "23")  # data exception, integrity constraint violation
_DATA_ERRORS = (ValueError, LookupError, TypeError, ArithmeticError)

_OUTAGE_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "25",  # invalid transaction state: read-only transaction (25006), idle timeout (25P03)
    "28",  # invalid authorization: a failed login
    "3D",  # invalid catalog name: the database is missing
    "40",  # transaction rollback: serialization failure, deadlock
    "53",  # insufficient resources
    "55",  # object not in prerequisite state: lock_not_available
    "57",  # operator intervention: admin shutdown, statement timeout, cannot connect now
    "58",  # system error
)
_OUTAGE_SQLSTATES = {"42501"}  # insufficient_privilege: a revoked grant


def sqlstate(error: BaseException) -> str:
    """The SQLSTATE of a Postgres error, `""` for anything else."""
    if not isinstance(error, asyncpg.PostgresError):
        return ""
    return str(getattr(error, "sqlstate", "") or "")


def is_data_error(error: BaseException) -> bool:
    """True only for failures caused by the data a handler was given (poison candidates).

    Postgres errors count by SQLSTATE class alone (22, 23); other Python
    errors by type. Connection-level asyncpg errors are never data errors.
    """
    if isinstance(error, asyncpg.PostgresError):
        return sqlstate(error)[:2] in _DATA_SQLSTATE_CLASSES
    if isinstance(error, asyncpg.InterfaceError | OSError | asyncio.TimeoutError):
        return False
    return isinstance(error, _DATA_ERRORS)


def is_database_outage(error: BaseException) -> bool:
    """True for errors that positively say the database is unreachable, unfit or busy.

    For loops that retry known outages and let anything else escape (the
    step pool, the executor); the consumer uses the stricter inverted rule
    (`is_data_error`) instead.
    """
    if isinstance(error, ConflictBoundExceeded | DatabaseNotWritable):
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
    state = sqlstate(error)
    return state in _OUTAGE_SQLSTATES or state[:2] in _OUTAGE_SQLSTATE_CLASSES

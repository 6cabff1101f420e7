"""Outage or poison: only failures of the data are poison, everything else is an outage.

The break this catches: an allow-list of outages, under which a read-only node, a failed
login, a missing database, a revoked privilege or an admin shutdown would be taken for
poison and whole streams dead-lettered during a failover.
"""

from __future__ import annotations

import json

import asyncpg
import pydantic
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from awooop.infra.kafka.consumer import is_poison
from awooop.infra.kafka.records import PoisonRecord
from awooop.infra.postgres.errors import (
    ConflictBoundExceeded,
    DatabaseNotWritable,
    EventTooLarge,
    is_data_error,
    is_database_outage,
)

pytestmark = pytest.mark.unit

E = asyncpg.exceptions

OUTAGES = [
    E.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),  # 25006
    E.InvalidPasswordError("password authentication failed"),  # 28P01
    E.InvalidAuthorizationSpecificationError("role does not exist"),  # 28000
    E.InvalidCatalogNameError('database "awooop" does not exist'),  # 3D000
    E.InsufficientPrivilegeError("permission denied for table events"),  # 42501
    E.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
    E.CannotConnectNowError("the database system is starting up"),  # 57P03
    E.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
    E.LockNotAvailableError("could not obtain lock"),  # 55P03
    E.SerializationError("could not serialize access"),  # 40001
    E.DeadlockDetectedError("deadlock detected"),  # 40P01
    E.TooManyConnectionsError("too many clients"),  # 53300
    E.IdleInTransactionSessionTimeoutError("idle-in-transaction timeout"),  # 25P03
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
    asyncpg.InterfaceError("connection is closed"),
    E.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ConflictBoundExceeded("conflicts past 5"),
    DatabaseNotWritable("transactions are read-only"),
    KafkaConnectionError("broker away"),
]

NOT_FORESEEN = [
    RuntimeError("something nobody foresaw"),
    AssertionError("an invariant broke"),
    E.UndefinedTableError('relation "runs" does not exist'),  # 42P01: a deploy problem
    E.UndefinedColumnError("column does not exist"),  # 42703
    MessageSizeTooLargeError(),
]

POISON = [
    E.InvalidTextRepresentationError("invalid input syntax for type uuid"),  # 22P02
    E.NumericValueOutOfRangeError("value out of range"),  # 22003
    E.CheckViolationError("new row violates check constraint"),  # 23514
    E.NotNullViolationError("null value in column"),  # 23502
    E.UniqueViolationError("duplicate key value"),  # 23505 (conflicts are raised apart)
    ValueError("not a run id"),
    json.JSONDecodeError("Expecting value", "x", 0),
    KeyError("payload"),
    TypeError("unsupported operand"),
    ZeroDivisionError("division by zero"),
    EventTooLarge("event is 2000000 bytes"),
    PoisonRecord("E-DLQ-DECODE", "not JSON"),
]


def _validation_error() -> pydantic.ValidationError:
    class Shape(pydantic.BaseModel):
        n: int

    try:
        Shape.model_validate({"n": "many"})
    except pydantic.ValidationError as error:
        return error
    raise AssertionError("validation passed")


@pytest.mark.parametrize("error", OUTAGES + NOT_FORESEEN, ids=repr)
def test_infrastructure_and_unforeseen_failures_are_never_poison(error: BaseException) -> None:
    assert not is_poison(error)
    assert not is_data_error(error)


@pytest.mark.parametrize("error", OUTAGES[:-1], ids=repr)
def test_database_outages_are_recognised_for_loops_that_retry_them(error: BaseException) -> None:
    assert is_database_outage(error)


@pytest.mark.parametrize("error", NOT_FORESEEN[:2], ids=repr)
def test_an_unforeseen_error_is_not_called_a_database_outage(error: BaseException) -> None:
    # Loops that retry only known outages let these escape, so the process crashes loudly.
    assert not is_database_outage(error)


@pytest.mark.parametrize("error", POISON, ids=repr)
def test_failures_of_the_data_are_poison(error: BaseException) -> None:
    assert is_poison(error)


def test_a_validation_error_is_poison() -> None:
    assert is_poison(_validation_error())

"""The budget read models a set of budget events folds into.

Budget events (`awooop.budget.events.v1`) belong to no run: their stream is the
project's (`budget:<project>`) and their `correlation_id` is the project id.
They fold into two read models, never into a run's timeline:

* `budget_state`, one row per project: the tenant's kill switch as its latest
  `budget.tenant_killed` or `budget.tenant_reset` left it. The event with the
  highest `stream_seq` wins (then the highest `event_id`, which only events
  sharing a `stream_seq` would need), whatever order they arrive in, as a run's
  state does; every column comes from that one event.
* `budget_trips`, one row per `budget.scope_tripped` event, keyed by its
  `event_id` and written once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from awooop.contracts.records.envelope import Envelope

TENANT_KILLED = "budget.tenant_killed"
TENANT_RESET = "budget.tenant_reset"
SCOPE_TRIPPED = "budget.scope_tripped"
BUDGET_EVENT_TYPES = frozenset({TENANT_KILLED, TENANT_RESET, SCOPE_TRIPPED})

BUDGET_STATE_COLUMNS = (
    "project_id",
    "killed",
    "changed_at",
    "event_type",
    "event_id",
    "code",
    "reason",
    "actor",
    "budget_revision",
    "last_stream_seq",
)
BUDGET_TRIP_COLUMNS = (
    "project_id",
    "event_id",
    "scope_key",
    "scope",
    "period",
    "period_key",
    "budget_revision",
    "occurred_at",
)


@dataclass(frozen=True, slots=True)
class BudgetStateRow:
    """The kill switch of one project, as one kill or reset event set it."""

    project_id: str
    killed: bool
    changed_at: dt.datetime
    event_type: str
    event_id: uuid.UUID
    code: str | None
    reason: str
    actor: str
    budget_revision: str | None
    last_stream_seq: int

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in BUDGET_STATE_COLUMNS)

    def supersedes(self, other: BudgetStateRow) -> bool:
        return (self.last_stream_seq, self.event_id) > (other.last_stream_seq, other.event_id)


@dataclass(frozen=True, slots=True)
class BudgetTripRow:
    project_id: str
    event_id: uuid.UUID
    scope_key: str
    scope: str
    period: str
    period_key: str
    budget_revision: str
    occurred_at: dt.datetime

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in BUDGET_TRIP_COLUMNS)


def _state(e: Envelope[Any]) -> BudgetStateRow:
    p = e.payload
    killed = e.event_type == TENANT_KILLED
    return BudgetStateRow(
        project_id=e.project_id,
        killed=killed,
        changed_at=e.occurred_at,
        event_type=e.event_type,
        event_id=e.event_id,
        code=p.code if killed else None,
        reason=p.reason,
        # A kill is the runtime's own decision (the envelope's actor); a reset names the
        # operator who asked for it.
        actor=e.actor if killed else p.actor,
        budget_revision=p.budget_revision if killed else None,
        last_stream_seq=e.stream_seq,
    )


def _trip(e: Envelope[Any]) -> BudgetTripRow:
    p = e.payload
    return BudgetTripRow(
        project_id=e.project_id,
        event_id=e.event_id,
        scope_key=p.scope_key,
        scope=p.scope,
        period=p.period,
        period_key=p.period_key,
        budget_revision=p.budget_revision,
        occurred_at=e.occurred_at,
    )


def fold_budget_events(
    envelopes: Iterable[Envelope[Any]],
) -> tuple[list[BudgetStateRow], list[BudgetTripRow]]:
    """The `budget_state` and `budget_trips` rows of a set of budget events."""
    states: dict[str, BudgetStateRow] = {}
    trips: dict[tuple[str, uuid.UUID], BudgetTripRow] = {}
    for envelope in envelopes:
        if envelope.event_type == SCOPE_TRIPPED:
            trips.setdefault((envelope.project_id, envelope.event_id), _trip(envelope))
            continue
        row = _state(envelope)
        held = states.get(row.project_id)
        if held is None or row.supersedes(held):
            states[row.project_id] = row
    return list(states.values()), list(trips.values())

"""The LLM steps a run's events report: one `run_steps` row per step.

A step's report rides on the event its decision produced (hot-path rule 4):
`run.tool_call_requested` (the step asked for a tool), `run.completed` (it
replied) or `run.failed` (its output failed the run); an event of an older
version, or one no LLM step decided, carries none. A row is owned by one event:
should two events ever name the same step of a run, the one with the lowest
`event_id` wins, in memory and in the SQL merge alike, so the row does not depend
on the order the events arrive in.

`day` and `month` are the UTC period keys (`YYYY-MM-DD`, `YYYY-MM`) of the
event's `occurred_at`, the keys the budget ledger counts daily and monthly usage
under; the `budget_usage` view sums the steps by them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from awooop.contracts.records.envelope import Envelope

StepOutcome = Literal["tool_call", "reply", "failed"]

STEP_OUTCOMES: dict[str, StepOutcome] = {
    "run.tool_call_requested": "tool_call",
    "run.completed": "reply",
    "run.failed": "failed",
}
"""The run events that carry a step report, and what the step's decision was."""

STEP_COLUMNS = (
    "project_id",
    "run_id",
    "number",
    "model",
    "tokens_in",
    "tokens_out",
    "cost",
    "latency_ms",
    "schema_retries",
    "reserved_tokens",
    "outcome",
    "event_id",
    "occurred_at",
    "day",
    "month",
)


@dataclass(frozen=True, slots=True)
class StepRow:
    project_id: str
    run_id: uuid.UUID
    number: int
    model: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    schema_retries: int
    reserved_tokens: int
    outcome: StepOutcome
    event_id: uuid.UUID
    occurred_at: dt.datetime
    day: str
    month: str

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in STEP_COLUMNS)


def period_keys(at: dt.datetime) -> tuple[str, str]:
    """The UTC day and month of `at`, as the budget ledger writes its period keys."""
    utc = at.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d"), utc.strftime("%Y-%m")


def step_row(envelope: Envelope[Any], run_id: uuid.UUID) -> StepRow | None:
    """The step an event reports, or None when it reports none."""
    outcome = STEP_OUTCOMES.get(envelope.event_type)
    step = getattr(envelope.payload, "step", None) if outcome is not None else None
    if outcome is None or step is None:
        return None
    day, month = period_keys(envelope.occurred_at)
    return StepRow(
        project_id=envelope.project_id,
        run_id=run_id,
        number=step.number,
        model=step.model,
        tokens_in=step.tokens_in,
        tokens_out=step.tokens_out,
        cost=Decimal(step.cost),
        latency_ms=step.latency_ms,
        schema_retries=step.schema_retries,
        reserved_tokens=step.reserved_tokens,
        outcome=outcome,
        event_id=envelope.event_id,
        occurred_at=envelope.occurred_at,
        day=day,
        month=month,
    )


StepKey = tuple[str, uuid.UUID, int]


def merge_step(steps: dict[StepKey, StepRow], row: StepRow) -> None:
    """Keep, per step, the row of the event with the lowest `event_id`."""
    key = (row.project_id, row.run_id, row.number)
    held = steps.get(key)
    if held is None or row.event_id < held.event_id:
        steps[key] = row

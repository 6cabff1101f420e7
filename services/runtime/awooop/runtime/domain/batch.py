"""The in-memory fold of one consumed batch over the run rows it locked.

No I/O: it takes the locked runs and the batch's new envelopes in
partition-offset order, decides through the domain functions exactly as one
event at a time would, and returns what to write in one statement per table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.catalogue import MODE_WITHOUT_POLICY, Catalogue
from awooop.contracts.envelope import Envelope
from awooop.infra.postgres.event_store import NewEvent
from awooop.runtime.domain.run import Run, accept_tool_result, reject_double_text, start_run
from awooop.runtime.recording import record

MESSAGE = "ingress.message_received"
OUTCOMES = {
    "gateway.tool_call_succeeded": "succeeded",
    "gateway.tool_call_blocked": "blocked",
    "gateway.tool_call_failed": "failed",
}

Subject = tuple[str, str]


@dataclass
class Written:
    """A run's row after the batch: `last_event_id` set; `saved` when a decision moved it
    (its lease is then taken when `due`, released otherwise), else only its version moved."""

    run: Run
    last_event_id: uuid.UUID
    saved: bool = False
    due: bool = False
    max_attempts: int = 0
    timeout_seconds: int = 0


@dataclass
class BatchWrites:
    """What one batch writes: runs to insert, runs to update, events to append (in order)."""

    inserts: dict[uuid.UUID, Written] = field(default_factory=dict)
    updates: dict[uuid.UUID, Written] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)


def run_id_of(env: Envelope[Any]) -> uuid.UUID:
    """The run an envelope belongs to: a message's own id, an outcome's correlation id."""
    return env.event_id if env.event_type == MESSAGE else uuid.UUID(env.correlation_id)


def lock_keys(envelopes: Iterable[Envelope[Any]]) -> tuple[list[uuid.UUID], list[Subject]]:
    """The run ids and the (project, subject) pairs whose rows the batch must lock."""
    run_ids: set[uuid.UUID] = set()
    subjects: set[Subject] = set()
    for env in envelopes:
        run_ids.add(run_id_of(env))
        if env.event_type == MESSAGE:
            subjects.add((env.project_id, env.payload.platform_subject_id))
    return sorted(run_ids), sorted(subjects)


def fold_batch(
    locked: Sequence[Run],
    envelopes: Sequence[Envelope[Any]],
    catalogue: Catalogue,
    revision: str,
    now: dt.datetime,
) -> BatchWrites:
    """Fold `envelopes` (new to this service, in order) over the `locked` runs."""
    runs = {run.run_id: run for run in locked}
    active = {(r.project_id, r.platform_subject_id): r.run_id for r in locked if r.active}
    writes = BatchWrites()

    def apply(run: Run, events: list[NewEvent], *, saved: bool, due: bool) -> None:
        runs[run.run_id] = run
        writes.events.extend(events)
        target = writes.inserts if run.run_id in writes.inserts else writes.updates
        current = target.get(run.run_id)
        if current is None:
            current = target[run.run_id] = Written(run, events[-1].event_id)
        current.run, current.last_event_id = run, events[-1].event_id
        if saved:
            current.saved, current.due = True, due
        subject = (run.project_id, run.platform_subject_id)
        if run.active:
            active[subject] = run.run_id
        elif active.get(subject) == run.run_id:
            del active[subject]

    for env in envelopes:
        if env.event_type == MESSAGE:
            message = env.payload
            holder = active.get((env.project_id, message.platform_subject_id))
            if holder is not None:
                current = runs[holder]
                decision = reject_double_text(current, env.event_id)
                run, events = record(
                    decision, current.version, causation_id=str(env.event_id), now=now
                )
                apply(run, events, saved=False, due=False)
                continue
            if env.event_id in runs:
                continue  # started long ago by this very message (past the inbox horizon)
            agent = catalogue.default_agent
            decision = start_run(
                env.event_id,
                env.project_id,
                message,
                agent,
                MODE_WITHOUT_POLICY,
                revision,
                env.trace_id,
            )
            run, events = record(decision, 0, causation_id=str(env.event_id), now=now)
            writes.inserts[run.run_id] = Written(
                run,
                events[-1].event_id,
                saved=True,
                due=True,
                max_attempts=agent.max_attempts,
                timeout_seconds=agent.run_timeout_seconds,
            )
            apply(run, events, saved=True, due=True)
            continue
        known = runs.get(run_id_of(env))
        if known is None:
            continue
        outcome = OUTCOMES[env.event_type]
        accepted = accept_tool_result(known, env.payload.call_id, outcome, result_of(env.payload))
        if accepted is None:
            continue  # an answer nobody waits for
        run, events = record(accepted, known.version, causation_id=str(env.event_id), now=now)
        apply(run, events, saved=True, due=accepted.step_due)
    return writes


def result_of(payload: Any) -> Any:
    """What a gateway event gives the agent: the result, or the refusal."""
    data = payload.model_dump(mode="json")
    data.pop("call_id", None)
    data.pop("revision", None)
    return data.get("result", data)

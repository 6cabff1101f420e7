"""A decision's payloads as run-stream events, appended at the run's next versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from awooop.contracts.topics import Topics
from awooop.contracts.typed_envelopes import new_envelope
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import NewEvent
from awooop.runtime.domain.run import Decision, Run

SERVICE = "runtime"


def record(
    decision: Decision, base_version: int, *, causation_id: str | None, now: dt.datetime
) -> tuple[Run, list[NewEvent]]:
    """Envelopes for `decision` after `base_version`; returns the run at its new version."""
    run = decision.run
    events = []
    for offset, payload in enumerate(decision.payloads, start=1):
        envelope = new_envelope(
            payload,
            occurred_at=now,
            project_id=run.project_id,
            stream_type="run",
            stream_id=str(run.run_id),
            stream_seq=base_version + offset,
            trace_id=run.trace_id,
            correlation_id=str(run.run_id),
            causation_id=causation_id,
            actor=f"service:{SERVICE}",
            producer=SERVICE,
        )
        events.append(to_new_event(envelope, Topics.RUN_EVENTS, str(run.run_id)))
    return replace(run, version=base_version + len(events)), events

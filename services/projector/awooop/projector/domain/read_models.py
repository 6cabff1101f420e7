"""The rows each batch adds to the read models, folded per key in memory.

Every projected event gives one `timeline` row, keyed by its `event_id`, for the
run it belongs to (`run_id` = `correlation_id`: the run id is the `event_id` of
the ingress message that started it). Events of the run's own stream
(`stream_type` `run`) also fold into the run's `runs` row, and an ingress
message gives that row its `trigger_text`.

The fold is a pure function of the set of events, whatever their order:

* a column that one event owns is written once (the first non-null value
  wins, and every copy of that event carries the same value);
* `state` comes from the run-stream event with the highest `stream_seq`, so a
  late or redelivered older event never moves it back;
* `last_stream_seq` is the highest `stream_seq` that set the state.

The SQL merge (adapters) applies the same rules between a staged row and the
stored one, which is what makes a rebuild equal the live models. Contract events
belong to no run: they fold into the contract read models (contract_models.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_RUN_TIMEOUT
from awooop.projector.domain.contract_models import (
    CONTRACT_EVENT_TYPES,
    RevisionKey,
    fold_contract_events,
)
from awooop.projector.domain.rows import ReadModelRows, RunRow, TimelineRow
from awooop.projector.domain.summaries import SUMMARIES, summarize
from awooop.security.signing_keys import KeyRing

PROJECTED_EVENT_TYPES = frozenset(SUMMARIES) | CONTRACT_EVENT_TYPES
RUN_STREAM = "run"


class NotARunId(ValueError):
    """An event whose `correlation_id` is not a run id (a UUID): it belongs to no run."""


def run_id_of(envelope: Envelope[Any]) -> uuid.UUID:
    try:
        return uuid.UUID(envelope.correlation_id)
    except ValueError:
        raise NotARunId(
            f"{envelope.event_type} {envelope.event_id}: correlation_id "
            f"{envelope.correlation_id!r} is not a run id (a UUID)"
        ) from None


RunFacts = tuple[str, dict[str, Any]]
"""The state a run-stream event puts the run in, and the columns it owns."""


def _started(e: Envelope[Any]) -> RunFacts:
    # The run row keeps the agent revision the run is pinned to (the first one named);
    # the timeline's summary lists every revision the event names.
    p = e.payload
    return "pending", {
        "agent_id": p.agent_id,
        "platform_subject_id": p.platform_subject_id,
        "chat_id": p.chat_id,
        "channel_type": p.channel_type,
        "mode": p.mode,
        "revision": p.agent_revision,
        "started_at": e.occurred_at,
    }


def _completed(e: Envelope[Any]) -> RunFacts:
    p = e.payload
    return "completed", {
        "reply": p.reply,
        "suppressed": p.suppressed,
        "completed_at": e.occurred_at,
    }


def _failed(e: Envelope[Any]) -> RunFacts:
    # Runs that timed out before `run.timed_out` existed ended with `run.failed` and
    # E-RUN-TIMEOUT; a rebuild must read them as the live model does today.
    state = "timeout" if e.payload.code == E_RUN_TIMEOUT.code else "failed"
    return state, {"error_code": e.payload.code, "completed_at": e.occurred_at}


def _timed_out(e: Envelope[Any]) -> RunFacts:
    return "timeout", {"error_code": e.payload.code, "completed_at": e.occurred_at}


RUN_FACTS: dict[str, Callable[[Envelope[Any]], RunFacts]] = {
    "run.started": _started,
    "run.tool_call_requested": lambda _e: ("waiting_tool", {}),
    "run.tool_result_accepted": lambda _e: ("running", {}),
    "run.completed": _completed,
    "run.failed": _failed,
    "run.timed_out": _timed_out,
    "run.cancelled": lambda e: (
        "cancelled",
        {"error_code": e.payload.code, "completed_at": e.occurred_at},
    ),
}
"""Run-stream events that change the run row (`run.message_rejected` is timeline only)."""


def require_fold_key(envelope: Envelope[Any]) -> None:
    """Raise `NotARunId` for an event the fold cannot place: a run event of no run."""
    if envelope.event_type not in CONTRACT_EVENT_TYPES:
        run_id_of(envelope)


def timeline_row(envelope: Envelope[Any], run_id: uuid.UUID) -> TimelineRow:
    return TimelineRow(
        project_id=envelope.project_id,
        run_id=run_id,
        event_id=envelope.event_id,
        occurred_at=envelope.occurred_at,
        event_type=envelope.event_type,
        stream_type=envelope.stream_type,
        stream_id=envelope.stream_id,
        stream_seq=envelope.stream_seq,
        actor=envelope.actor,
        summary=summarize(envelope),
    )


def fold_batch(
    envelopes: Iterable[Envelope[Any]],
    ring: KeyRing | None = None,
    stored_bodies: Mapping[RevisionKey, dict[str, Any]] | None = None,
) -> ReadModelRows:
    """The rows of a batch, one per key; raises `NotARunId` for a run event of no run.

    `ring` verifies contract publications (see `fold_contract_events`)."""
    timeline: dict[tuple[str, uuid.UUID, uuid.UUID], TimelineRow] = {}
    runs: dict[tuple[str, uuid.UUID], RunRow] = {}
    contract_events: list[Envelope[Any]] = []
    for envelope in envelopes:
        if envelope.event_type in CONTRACT_EVENT_TYPES:
            contract_events.append(envelope)
            continue
        run_id = run_id_of(envelope)
        key = (envelope.project_id, run_id)
        timeline.setdefault((*key, envelope.event_id), timeline_row(envelope, run_id))
        if envelope.event_type == "ingress.message_received":
            _merge(runs.setdefault(key, RunRow(*key)), {"trigger_text": envelope.payload.text})
            continue
        facts = RUN_FACTS.get(envelope.event_type)
        if facts is None or envelope.stream_type != RUN_STREAM:
            continue
        state, columns = facts(envelope)
        row = runs.setdefault(key, RunRow(*key))
        _merge(row, columns)
        if envelope.stream_seq > row.last_stream_seq:
            row.state, row.last_stream_seq = state, envelope.stream_seq
    contracts, revisions = fold_contract_events(contract_events, ring, stored_bodies)
    return ReadModelRows(list(timeline.values()), list(runs.values()), contracts, revisions)


def _merge(row: RunRow, columns: dict[str, Any]) -> None:
    for column, value in columns.items():
        if getattr(row, column) is None:
            setattr(row, column, value)

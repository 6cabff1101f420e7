"""The rows each batch adds to the read models, folded per key in memory.

Every projected event of a run gives one `timeline` row, keyed by its `event_id`, for
the run it belongs to (`run_id` = `correlation_id`: the run id is the `event_id` of
the ingress message that started it; a delivery report names its run in its payload).
Events of the run's own stream (`stream_type` `run`) also fold into the run's `runs`
row, and an ingress message gives that row its `trigger_text`: the redacted
`display_text`, never the `text` the person sent.

The fold is a pure function of the set of events, whatever their order:

* a column that one event owns is written once (the first non-null value
  wins, and every copy of that event carries the same value);
* `state` comes from the run-stream event with the highest `stream_seq`, so a
  late or redelivered older event never moves it back;
* `last_stream_seq` is the highest `stream_seq` that set the state.

A step report on a run event gives its `run_steps` row (steps.py); an outbound
message and its delivery report its `outbound_messages` row (outbound.py); every
ingress event, and the runtime's word on a message, its `channel_events` row
(channel_events.py); a tool call's request and the gateway's word on it its
`mcp_calls` row (mcp_calls.py); an approval event its request's `approvals` row
(approvals.py). An approval event names its run in its payload (`run_id`), as a
delivery report does. The SQL merge (adapters) applies the same rules between
a staged row and the stored one, which is what makes a rebuild equal the live models.
Contract and budget events, and the ingress events that are no message, belong to no
run: they fold into the contract read models (contract_models.py), the budget ones
(budget_models.py) and `channel_events`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.projector.domain.approvals import (
    APPROVAL_EVENT_TYPES,
    ApprovalKey,
    ApprovalRow,
    approval_row,
    merge_approval,
)
from awooop.projector.domain.budget_models import BUDGET_EVENT_TYPES, fold_budget_events
from awooop.projector.domain.channel_events import (
    ChannelEventKey,
    ChannelEventRow,
    merge_channel_event,
)
from awooop.projector.domain.channel_facts import (
    CHANNEL_FACTS,
    CHANNEL_ONLY_EVENT_TYPES,
    MESSAGE_RECEIVED,
)
from awooop.projector.domain.contract_models import (
    CONTRACT_EVENT_TYPES,
    RevisionKey,
    fold_contract_events,
)
from awooop.projector.domain.mcp_calls import McpCallKey, McpCallRow, mcp_call_row, merge_mcp_call
from awooop.projector.domain.outbound import (
    DELIVERY_REPORTED,
    OUTBOUND_REQUESTED,
    OutboundKey,
    OutboundRow,
    delivery_row,
    merge_outbound,
    outbound_row,
)
from awooop.projector.domain.rows import ReadModelRows, RunRow, TimelineRow
from awooop.projector.domain.run_facts import RUN_FACTS
from awooop.projector.domain.steps import StepKey, StepRow, merge_step, step_row
from awooop.projector.domain.summaries import SUMMARIES, summarize
from awooop.security.signing_keys import KeyRing

RUNLESS_EVENT_TYPES = CONTRACT_EVENT_TYPES | BUDGET_EVENT_TYPES | CHANNEL_ONLY_EVENT_TYPES
"""Projected types that belong to no run: their `correlation_id` is no run id."""
PROJECTED_EVENT_TYPES = frozenset(SUMMARIES) | RUNLESS_EVENT_TYPES
RUN_STREAM = "run"


class NotARunId(ValueError):
    """An event whose `correlation_id` is not a run id (a UUID): it belongs to no run."""


def run_id_of(envelope: Envelope[Any]) -> uuid.UUID:
    if envelope.event_type == DELIVERY_REPORTED or envelope.event_type in APPROVAL_EVENT_TYPES:
        run_id: uuid.UUID = envelope.payload.run_id
        return run_id
    try:
        return uuid.UUID(envelope.correlation_id)
    except ValueError:
        raise NotARunId(
            f"{envelope.event_type} {envelope.event_id}: correlation_id "
            f"{envelope.correlation_id!r} is not a run id (a UUID)"
        ) from None


def require_fold_key(envelope: Envelope[Any]) -> None:
    """Raise `NotARunId` for an event the fold cannot place: a run event of no run."""
    if envelope.event_type not in RUNLESS_EVENT_TYPES:
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
    steps: dict[StepKey, StepRow] = {}
    outbound: dict[OutboundKey, OutboundRow] = {}
    channel: dict[ChannelEventKey, ChannelEventRow] = {}
    calls: dict[McpCallKey, McpCallRow] = {}
    approvals: dict[ApprovalKey, ApprovalRow] = {}
    contract_events: list[Envelope[Any]] = []
    budget_events: list[Envelope[Any]] = []
    for envelope in envelopes:
        fact = CHANNEL_FACTS.get(envelope.event_type)
        if envelope.event_type in RUNLESS_EVENT_TYPES:
            if envelope.event_type in CONTRACT_EVENT_TYPES:
                contract_events.append(envelope)
            elif envelope.event_type in BUDGET_EVENT_TYPES:
                budget_events.append(envelope)
            elif fact is not None:
                merge_channel_event(channel, fact(envelope))
            continue
        run_id = run_id_of(envelope)
        key = (envelope.project_id, run_id)
        if fact is not None:
            merge_channel_event(channel, fact(envelope))
        timeline.setdefault((*key, envelope.event_id), timeline_row(envelope, run_id))
        if envelope.event_type == OUTBOUND_REQUESTED:
            merge_outbound(outbound, outbound_row(envelope))
            continue
        if envelope.event_type == DELIVERY_REPORTED:
            merge_outbound(outbound, delivery_row(envelope))
            continue
        if (step := step_row(envelope, run_id)) is not None:
            merge_step(steps, step)
        if (call := mcp_call_row(envelope, run_id)) is not None:
            merge_mcp_call(calls, call)
        if (approval := approval_row(envelope)) is not None:
            merge_approval(approvals, approval)
            continue
        if envelope.event_type == MESSAGE_RECEIVED:
            trigger = {"trigger_text": envelope.payload.display_text}
            _merge(runs.setdefault(key, RunRow(*key)), trigger)
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
    states, trips = fold_budget_events(budget_events)
    return ReadModelRows(
        list(timeline.values()),
        list(runs.values()),
        contracts,
        revisions,
        steps=list(steps.values()),
        outbound=list(outbound.values()),
        budget_states=states,
        budget_trips=trips,
        channel_events=list(channel.values()),
        mcp_calls=list(calls.values()),
        approvals=list(approvals.values()),
    )


def _merge(row: RunRow, columns: dict[str, Any]) -> None:
    for column, value in columns.items():
        if getattr(row, column) is None:
            setattr(row, column, value)

"""The fold of step reports, outbound messages and budget events: given these events, in
any order and with duplicates, then these `run_steps`, `outbound_messages`, `budget_state`
and `budget_trips` rows, and their checksums."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id
from awooop.projector.domain.checksums import canonical_value, checksums_of_rows, differences
from awooop.projector.domain.offline_fold import fold_records
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    fold_batch,
    require_fold_key,
)
from awooop.projector.domain.steps import period_keys
from support.budget_envelopes import REPLY, BudgetStream, step, stepped_run

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 3, 31, 23, 59, 58, tzinfo=dt.UTC)


def _budget() -> BudgetStream:
    stream = BudgetStream("acme", AT)
    stream.trip("daily", "2026-03-31")
    stream.kill()
    stream.reset()
    stream.kill(reason="spent again")
    return stream


def test_each_step_report_is_one_row_with_its_outcome_and_periods() -> None:
    events = stepped_run("acme", AT)
    rows = fold_batch(events)
    run_id = uuid.UUID(events[0].correlation_id)
    steps = sorted(rows.steps, key=lambda s: s.number)
    assert [(s.number, s.outcome, s.event_id) for s in steps] == [
        (0, "tool_call", events[2].event_id),
        (1, "reply", events[4].event_id),
    ]
    first, second = steps
    assert (first.run_id, first.project_id, first.model) == (run_id, "acme", "gpt-4o-mini")
    assert (first.tokens_in, first.tokens_out, first.cost) == (300, 40, Decimal("0.000069"))
    assert (first.latency_ms, first.schema_retries, first.reserved_tokens) == (40, 0, 1324)
    # 23:59:58 + 2 s is the next day, and the next month, in UTC.
    assert (first.day, first.month) == ("2026-04-01", "2026-04")
    assert second.occurred_at == AT + dt.timedelta(seconds=4)


def test_events_without_a_step_report_give_no_step_row() -> None:
    events = stepped_run("acme", AT)
    requested, completed = events[2], events[4]
    bare = [
        requested.model_copy(
            update={"payload": requested.payload.model_copy(update={"step": None})}
        ),
        completed.model_copy(
            update={"payload": completed.payload.model_copy(update={"step": None})}
        ),
    ]
    assert fold_batch([*events[:2], *bare]).steps == []


def test_two_events_naming_one_step_keep_the_lowest_event_id_in_any_order() -> None:
    events = stepped_run("acme", AT)
    completed = events[4]
    low, high = sorted([new_event_id(), new_event_id()])
    other = completed.payload.model_copy(update={"step": step(1, 1, 1, "9")})
    a = completed.model_copy(update={"event_id": high})
    b = completed.model_copy(update={"event_id": low, "payload": other})
    for batch in ([a, b], [b, a], [a, b, a]):
        [row] = fold_batch(batch).steps
        assert (row.event_id, row.tokens_in, row.cost) == (low, 1, Decimal(9))


def test_an_outbound_message_is_a_row_with_its_text_and_a_timeline_line_without() -> None:
    events = stepped_run("acme", AT)
    said = events[5]
    rows = fold_batch([said, said])
    [message] = rows.outbound
    assert (message.run_id, message.event_id) == (said.payload.run_id, said.event_id)
    assert (message.kind, message.chat_id, message.text) == ("final", "42", REPLY)
    assert message.deliver_before == AT + dt.timedelta(minutes=10)
    [line] = rows.timeline
    assert line.run_id == uuid.UUID(said.correlation_id)
    assert line.summary["text_length"] == len(REPLY)
    assert REPLY not in repr(line.summary)
    assert rows.runs == []  # the outbound stream is not the run's


def test_budget_events_belong_to_no_run_and_have_no_timeline() -> None:
    events = _budget().events
    assert {e.event_type for e in events} <= PROJECTED_EVENT_TYPES
    for event in events:
        require_fold_key(event)  # the project id is no run id, and that is no refusal
    rows = fold_batch(events)
    assert (rows.timeline, rows.runs, rows.steps) == ([], [], [])
    [state] = rows.budget_states
    assert (state.killed, state.reason, state.last_stream_seq) == (True, "spent again", 4)
    assert (state.code, state.actor, state.event_id) == (
        "E-BUDGET-KILLED",
        "service:runtime",
        events[3].event_id,
    )
    [trip] = rows.budget_trips
    assert (trip.scope, trip.period, trip.period_key) == ("agent", "daily", "2026-03-31")


def test_a_reset_names_its_operator_and_clears_the_code() -> None:
    stream = _budget()
    [state] = fold_batch(stream.events[:3]).budget_states
    assert (state.killed, state.code, state.actor, state.event_type) == (
        False,
        None,
        "operator:alice",
        "budget.tenant_reset",
    )
    assert state.changed_at == stream.events[2].occurred_at


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(10)), st.lists(st.integers(0, 9), max_size=6))
def test_the_new_models_ignore_order_and_duplicates(order: list[int], repeats: list[int]) -> None:
    events: list[Envelope[Any]] = [*stepped_run("acme", AT), *_budget().events[:4]]
    shuffled = [events[i] for i in order] + [events[i] for i in repeats]
    expected = checksums_of_rows(fold_batch(events))
    assert differences(checksums_of_rows(fold_batch(shuffled)), expected) == []


def test_the_checksums_cover_the_new_tables() -> None:
    rows = fold_batch([*stepped_run("acme", AT), *_budget().events])
    digests = checksums_of_rows(rows)
    counts = {t: digests.table_total(t).rows for t in digests.tables}
    assert counts["run_steps"] == 2
    assert counts["outbound_messages"] == 1
    assert (counts["budget_state"], counts["budget_trips"]) == (1, 1)


def test_a_decimal_digests_the_same_whatever_its_scale() -> None:
    assert canonical_value(Decimal("0.0000990")) == canonical_value(Decimal("0.000099"))
    assert canonical_value(Decimal("0.000099")) == "0.000099"
    assert canonical_value(Decimal("1E+2")) == "100"
    assert canonical_value(Decimal("0.000")) == "0"


def test_period_keys_are_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    assert period_keys(dt.datetime(2026, 4, 1, 1, 30, tzinfo=paris)) == ("2026-03-31", "2026-03")


class _Record:
    """A record as the offline fold reads it: its value and its headers."""

    def __init__(self, envelope: Envelope[Any]) -> None:
        self.value: bytes | None = EnvelopeCodec().encode(envelope)
        self._headers = {
            "event_type": envelope.event_type,
            "schema_version": str(envelope.schema_version),
        }

    def header(self, name: str) -> str | None:
        return self._headers.get(name)


def test_the_offline_fold_folds_budget_and_outbound_records_as_live_does() -> None:
    events = [*stepped_run("acme", AT), *_budget().events]
    fold = fold_records([_Record(e) for e in events])
    assert fold.counts == {"folded": 10, "not_projected": 0, "undecodable": 0, "no_run": 0}
    assert differences(fold.checksums, checksums_of_rows(fold_batch(events))) == []

"""The channel read models' fold: given every kind of inbound record, the runtime's word on
messages, outbound messages and their delivery reports, then these `channel_events` and
`outbound_messages` rows, whatever order and batches the topics interleave in."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_event_id
from awooop.projector.domain.channel_events import (
    CHANNEL_EVENT_COLUMNS,
    CHANNEL_OUTCOMES,
    ChannelEventRow,
    outcome_of,
)
from awooop.projector.domain.checksums import checksums_of_rows, differences
from awooop.projector.domain.offline_fold import fold_records
from awooop.projector.domain.outbound import OUTBOUND_COLUMNS, OutboundRow
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    fold_batch,
    require_fold_key,
)
from awooop.projector.domain.rows import ReadModelRows
from support.channel_envelopes import ChannelTraffic, Event

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


@dataclass
class Scenario:
    """A project's traffic, its events by name."""

    traffic: ChannelTraffic
    named: dict[str, Event]

    @property
    def events(self) -> list[Event]:
        return self.traffic.events


def scenario(project: str = "acme") -> Scenario:
    t = ChannelTraffic(project, AT)
    n: dict[str, Event] = {}
    n["first"] = t.message("is the database healthy?")
    n["first_started"] = t.started(n["first"])
    n["second"] = t.message("and the cache?")
    n["second_queued"] = t.queued(n["second"], on=n["first"])
    n["second_started"] = t.started(n["second"])
    n["third"] = t.message("hello??", user="43")
    n["third_busy"] = t.busy(n["third"], by=n["first"])
    n["waiting"] = t.message("still there?", user="44")
    n["waiting_queued"] = t.queued(n["waiting"], on=n["first"], seq=7)
    n["fresh"] = t.message("new here")
    n["button"] = t.button("approve:call-1")
    n["ignored"] = t.ignored("a bot's message", "beep")
    n["duplicate"] = t.duplicate(n["first"], offset=17)
    n["rejected"] = t.rejected("E-INBOUND-INVALID", "payload is not an object", 18, "acme:x")
    n["reply"] = t.outbound(n["first"], "All healthy.")
    n["reply_sent"] = t.delivery(n["reply"], "sent", ids=("555", "556"), attempts=2)
    n["ask"] = t.outbound(n["first"], "Approve?", kind="approval_request", buttons=("Yes", "No"))
    n["ask_failed"] = t.delivery(
        n["ask"], "failed", code="E-DELIVERY-REFUSED", reason="chat not found"
    )
    return Scenario(t, n)


def _channel(rows: ReadModelRows) -> dict[Any, ChannelEventRow]:
    return {row.event_id: row for row in rows.channel_events}


def test_every_record_is_one_row_with_its_outcome() -> None:
    s = scenario()
    n = s.named
    rows = _channel(fold_batch(s.events))
    outcomes = {name: rows[n[name].event_id].outcome for name in n if n[name].event_id in rows}
    assert outcomes == {
        "first": "run_started",
        "second": "run_started",
        "third": "busy",
        "waiting": "queued",
        "fresh": "received",
        "button": "button_pressed",
        "ignored": "ignored",
        "duplicate": "duplicate_of",
        "rejected": "rejected",
    }
    assert set(CHANNEL_OUTCOMES) - set(outcomes.values()) == set()


def test_each_outcome_keeps_the_fields_that_go_with_it() -> None:
    s = scenario()
    n = s.named
    rows = _channel(fold_batch(s.events))
    first = rows[n["first"].event_id]
    assert (first.run_id, first.kind, first.channel_type) == (
        n["first"].event_id,
        "message",
        "telegram",
    )
    assert (first.provider_event_id, first.chat_id, first.message_id) == ("7:1", "42", "101")
    assert (first.display_text, first.received_at, first.occurred_at) == (
        "is the database healthy?",
        AT,
        n["first"].occurred_at,
    )
    second = rows[n["second"].event_id]
    assert (second.queued_on, second.run_id) == (n["first"].event_id, n["second"].event_id)
    assert rows[n["third"].event_id].busy_with == n["first"].event_id
    assert rows[n["waiting"].event_id].queued_on == n["first"].event_id
    assert rows[n["button"].event_id].display_text == "approve:call-1"
    ignored = rows[n["ignored"].event_id]
    assert (ignored.reason, ignored.display_text) == ("a bot's message", "beep")
    duplicate = rows[n["duplicate"].event_id]
    assert (duplicate.duplicate_of, duplicate.record_partition, duplicate.record_offset) == (
        n["first"].event_id,
        2,
        17,
    )
    rejected = rows[n["rejected"].event_id]
    assert (rejected.code, rejected.reason, rejected.record_key, rejected.record_offset) == (
        "E-INBOUND-INVALID",
        "payload is not an object",
        "acme:x",
        18,
    )
    assert rejected.received_at is None


def test_the_runtime_word_alone_makes_no_outcome_until_its_message_comes() -> None:
    n = scenario().named
    [alone] = fold_batch([n["third_busy"]]).channel_events
    assert (alone.kind, alone.busy_with, alone.outcome) == (None, n["first"].event_id, None)


def test_outcome_rules() -> None:
    run, other = new_event_id(), new_event_id()
    assert outcome_of("message", run, None, other) == "run_started"  # queued, then started
    assert outcome_of("message", None, run, None) == "busy"
    assert outcome_of("message", None, None, None) == "received"
    assert outcome_of(None, run, None, None) is None
    assert [outcome_of(k, None, None, None) for k in ("button", "ignored", "duplicate")] == [
        "button_pressed",
        "ignored",
        "duplicate_of",
    ]


def test_two_runs_naming_one_message_keep_the_least_in_any_order() -> None:
    n = scenario().named
    low, high = sorted([new_event_id(), new_event_id()])
    a = ChannelEventRow("acme", n["third"].event_id, busy_with=high)
    b = ChannelEventRow("acme", n["third"].event_id, busy_with=low)
    assert a.merged(b).busy_with == b.merged(a).busy_with == low


def test_outbound_rows_carry_the_request_and_its_delivery() -> None:
    s = scenario()
    n = s.named
    rows = {row.event_id: row for row in fold_batch(s.events).outbound}
    reply, ask = rows[n["reply"].event_id], rows[n["ask"].event_id]
    assert (reply.run_id, reply.kind, reply.text, reply.reply_to) == (
        n["first"].event_id,
        "final",
        "All healthy.",
        "101",
    )
    assert (reply.status, reply.provider_message_ids, reply.attempts, reply.code) == (
        "sent",
        ["555", "556"],
        2,
        None,
    )
    assert (reply.reported_at, reply.report_event_id) == (
        n["reply_sent"].occurred_at,
        n["reply_sent"].event_id,
    )
    assert (ask.button_labels, ask.status, ask.code, ask.reason) == (
        ["Yes", "No"],
        "failed",
        "E-DELIVERY-REFUSED",
        "chat not found",
    )


def test_a_report_before_its_request_waits_for_the_request_columns() -> None:
    n = scenario().named
    [early] = fold_batch([n["reply_sent"]]).outbound
    assert (early.status, early.text, early.occurred_at, early.kind) == (
        "sent",
        None,
        None,
        "final",
    )
    [whole] = fold_batch([n["reply_sent"], n["reply"]]).outbound
    assert (whole.status, whole.text) == ("sent", "All healthy.")


def test_two_reports_of_one_message_keep_the_lowest_event_id() -> None:
    s = scenario()
    t, n = s.traffic, s.named
    low, high = sorted([new_event_id(), new_event_id()])
    sent = t.delivery(n["reply"], "sent", event_id=high)
    expired = t.delivery(n["reply"], "expired", event_id=low, code="E-DELIVERY-EXPIRED")
    for batch in ([sent, expired, n["reply"]], [n["reply"], expired, sent]):
        [row] = fold_batch(batch).outbound
        assert (row.status, row.code, row.report_event_id) == ("expired", "E-DELIVERY-EXPIRED", low)


def _split_and_merge(batches: list[list[Event]]) -> ReadModelRows:
    """Fold each batch, then merge the rows by the stored-row rules, as the SQL merges do
    batch after batch."""
    channel: dict[Any, ChannelEventRow] = {}
    outbound: dict[Any, OutboundRow] = {}
    for batch in batches:
        rows = fold_batch(batch)
        for row in rows.channel_events:
            key = (row.project_id, row.event_id)
            channel[key] = channel[key].merged(row) if key in channel else row
        for message in rows.outbound:
            okey = (message.project_id, message.run_id, message.event_id)
            outbound[okey] = outbound[okey].merged(message) if okey in outbound else message
    return ReadModelRows(
        [], [], outbound=list(outbound.values()), channel_events=list(channel.values())
    )


def _digest(rows: ReadModelRows) -> Any:
    digests = checksums_of_rows(rows).as_json()
    return {t: digests[t] for t in ("channel_events", "outbound_messages")}


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_any_interleaving_of_the_topics_gives_the_same_rows(data: st.DataObject) -> None:
    s = scenario()
    expected = _digest(fold_batch(s.events))
    order = data.draw(st.permutations(range(len(s.events))))
    repeats = data.draw(st.lists(st.integers(0, len(s.events) - 1), max_size=6))
    shuffled = [s.events[i] for i in order] + [s.events[i] for i in repeats]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(shuffled) - 1), max_size=6)))
    bounds = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds)]
    assert _digest(_split_and_merge(batches)) == expected
    assert (
        differences(
            checksums_of_rows(fold_batch(shuffled)), checksums_of_rows(fold_batch(s.events))
        )
        == []
    )


def test_the_ingress_records_that_are_no_message_belong_to_no_run() -> None:
    n = scenario().named
    others = [n[k] for k in ("button", "ignored", "duplicate", "rejected")]
    assert {e.event_type for e in others} <= PROJECTED_EVENT_TYPES
    strays = [e.model_copy(update={"correlation_id": "no-run"}) for e in others]
    for event in strays:
        require_fold_key(event)
    rows = fold_batch(strays)
    assert (rows.timeline, rows.runs, len(rows.channel_events)) == ([], [], 4)


def test_a_delivery_report_joins_its_run_timeline_without_its_reason() -> None:
    s = scenario()
    n = s.named
    report = n["ask_failed"].model_copy(update={"correlation_id": "not-a-run"})
    [line] = fold_batch([report]).timeline
    assert line.run_id == n["first"].event_id
    assert line.summary["status"] == "failed"
    assert line.summary["code"] == "E-DELIVERY-REFUSED"
    assert "chat not found" not in json.dumps(line.summary)


def test_the_checksums_cover_channel_events_with_their_outcome() -> None:
    s = scenario()
    rows = fold_batch(s.events)
    digests = checksums_of_rows(rows)
    assert digests.table_total("channel_events").rows == 9
    assert digests.table_total("outbound_messages").rows == 2
    assert len(rows.channel_events[0].values()) == len(CHANNEL_EVENT_COLUMNS)
    assert len(rows.outbound[0].values()) == len(OUTBOUND_COLUMNS)


class _Record:
    """A record as the offline fold reads it: its value and its headers."""

    def __init__(self, envelope: Event) -> None:
        self.value: bytes | None = EnvelopeCodec().encode(envelope)
        self._headers = {
            "event_type": envelope.event_type,
            "schema_version": str(envelope.schema_version),
        }

    def header(self, name: str) -> str | None:
        return self._headers.get(name)


def test_the_offline_fold_folds_channel_records_as_live_does() -> None:
    events = scenario().events
    fold = fold_records([_Record(e) for e in events])
    assert fold.counts == {"folded": len(events), "not_projected": 0, "undecodable": 0, "no_run": 0}
    assert differences(fold.checksums, checksums_of_rows(fold_batch(events))) == []

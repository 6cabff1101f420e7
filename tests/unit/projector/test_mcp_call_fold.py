"""The `mcp_calls` fold: given a run's tool-call requests and the gateway's word on each,
then one row per call with its status and the fields that go with it, whatever order and
batches the run and gateway topics interleave in, however often an event is redelivered."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_event_id
from awooop.projector.domain.checksums import READ_MODEL_TABLES, checksums_of_rows
from awooop.projector.domain.mcp_calls import (
    MCP_CALL_COLUMNS,
    MCP_CALL_STATUSES,
    McpCallRow,
    merge_mcp_call,
)
from awooop.projector.domain.read_models import fold_batch
from support.mcp_call_envelopes import (
    CARD,
    EMAIL,
    INVALID,
    TOOL_REVISION,
    Event,
    McpCallTraffic,
    display_facts,
    every_status,
)

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
CODEC = EnvelopeCodec()


@dataclass
class Scenario:
    traffic: McpCallTraffic
    named: dict[str, Event]

    @property
    def events(self) -> list[Event]:
        return self.traffic.events

    def call_id(self, name: str) -> str:
        call_id: str = self.named[name].payload.call_id
        return call_id


def scenario(project: str = "acme") -> Scenario:
    t = McpCallTraffic(project, AT)
    n = every_status(t)
    n["shadow"] = t.requested("restart__demo", {"service": "db"})
    n["shadow_refused"] = t.blocked(
        n["shadow"],
        gate=3,
        code="E-MCP-GATE-005",
        reason="a write call in shadow mode",
        would_need="approval",
    )
    return Scenario(t, n)


def _rows(events: list[Event]) -> dict[str, McpCallRow]:
    return {row.call_id: row for row in fold_batch(events).mcp_calls}


def test_every_call_is_one_row_with_its_status() -> None:
    s = scenario()
    rows = _rows(s.events)
    statuses = {name: rows[s.call_id(name)].status for name in s.named if name != "started"}
    assert {name: status for name, status in statuses.items() if "_" not in name} == {
        "ok": "succeeded",
        "held": "succeeded",
        "bad": "blocked",
        "busy": "blocked",
        "shadow": "blocked",
        "down": "failed",
        "waiting": "awaiting_approval",
        "asked": "requested",
    }
    assert set(statuses.values()) == set(MCP_CALL_STATUSES)
    assert len(rows) == 8
    assert {row.run_id for row in rows.values()} == {s.traffic.run_id}


def test_each_status_keeps_the_fields_that_go_with_it() -> None:
    s = scenario()
    n, rows = s.named, _rows(s.events)
    ok = rows[s.call_id("ok")]
    assert (ok.tool, ok.latency_ms, ok.redactions, ok.gate, ok.code) == (
        "status__demo",
        42.0,
        {"email": 1},
        None,
        None,
    )
    assert ok.arguments == {"service": "checkout", "notify": "[REDACTED:email]"}
    assert ok.argument_hash == display_facts(n["ok"].payload.arguments)["argument_hash"]
    assert (ok.requested_at, ok.decided_at, ok.decided_event_id) == (
        n["ok"].occurred_at,
        n["ok_done"].occurred_at,
        n["ok_done"].event_id,
    )
    assert ok.revisions == [TOOL_REVISION]
    held = rows[s.call_id("held")]
    assert held.action_hash == n["held_asked"].payload.action_hash
    assert (held.status, held.reason, held.latency_ms) == ("succeeded", None, 1800.0)
    bad = rows[s.call_id("bad")]
    assert (bad.gate, bad.code, bad.reason, bad.retry_after, bad.would_need) == (
        3,
        "E-MCP-GATE-004",
        INVALID,
        None,
        None,
    )
    busy = rows[s.call_id("busy")]
    assert (busy.gate, busy.code, busy.retry_after) == (4, "E-MCP-GATE-007", 1.5)
    assert rows[s.call_id("shadow")].would_need == "approval"
    down = rows[s.call_id("down")]
    assert (down.code, down.transient, down.latency_ms) == ("E-MCP-CALL-FAILED", True, 3.0)
    assert down.reason == "ConnectionRefusedError: mail [REDACTED:email]"
    waiting = rows[s.call_id("waiting")]
    assert (waiting.reason, waiting.action_hash, waiting.decided_at) == (
        None,
        n["waiting_asked"].payload.action_hash,
        n["waiting_asked"].occurred_at,
    )
    asked = rows[s.call_id("asked")]
    assert (asked.tool, asked.requested_at) == ("status__demo", n["asked"].occurred_at)
    assert (asked.arguments, asked.argument_hash, asked.decided_at, asked.revisions) == (
        None,
        None,
        None,
        None,
    )


def test_the_arguments_as_produced_never_reach_a_row() -> None:
    rows = fold_batch(scenario().events).mcp_calls
    kept = json.dumps([row.values() for row in rows], default=str)
    assert EMAIL not in kept
    assert CARD not in kept
    assert "[REDACTED:card]" in kept


def test_the_gateway_word_before_the_request_waits_for_the_request_columns() -> None:
    s = scenario()
    n = s.named
    [early] = fold_batch([n["held_done"]]).mcp_calls
    assert (early.status, early.tool, early.requested_at) == ("succeeded", "restart__demo", None)
    [whole] = fold_batch([n["held_done"], n["held_asked"], n["held"]]).mcp_calls
    assert (whole.status, whole.requested_at, whole.action_hash) == (
        "succeeded",
        n["held"].occurred_at,
        n["held_asked"].payload.action_hash,
    )


@pytest.mark.parametrize("name", ["held", "waiting", "ok", "bad"])
def test_every_order_of_one_call_s_events_gives_one_row(name: str) -> None:
    s = scenario()
    mine = [e for e in s.events if getattr(e.payload, "call_id", None) == s.call_id(name)]
    assert len(mine) >= 2
    first = fold_batch(mine).mcp_calls
    for order in itertools.permutations(mine):
        assert fold_batch(list(order)).mcp_calls == first


def test_a_redelivered_event_changes_nothing() -> None:
    s = scenario()
    once = fold_batch(s.events).mcp_calls
    assert fold_batch([*s.events, *s.events[3:9], s.events[1]]).mcp_calls == once
    row = _rows(s.events)[s.call_id("held")]
    assert row.merged(row) == row


def test_an_outcome_outranks_the_approval_whatever_their_times() -> None:
    s = scenario()
    n = s.named
    late = n["held_asked"].model_copy(update={"occurred_at": AT + dt.timedelta(hours=1)})
    for batch in ([n["held_done"], late], [late, n["held_done"]]):
        [row] = fold_batch(batch).mcp_calls
        assert (row.status, row.decided_event_id) == ("succeeded", n["held_done"].event_id)


def test_two_outcomes_of_one_call_keep_the_latest_then_the_highest_event_id() -> None:
    s = scenario()
    t, n = s.traffic, s.named
    low, high = sorted([new_event_id(), new_event_id()])
    failed = t.failed(n["ok"], code="E-MCP-CALL-FAILED", reason="gone", transient=False)
    same_time = {"occurred_at": n["ok_done"].occurred_at}
    succeeded = n["ok_done"].model_copy(update={"event_id": low, **same_time})
    failed = failed.model_copy(update={"event_id": high, **same_time})
    for batch in ([succeeded, failed, n["ok"]], [n["ok"], failed, succeeded]):
        [row] = fold_batch(batch).mcp_calls
        assert (row.status, row.decided_event_id, row.transient) == ("failed", high, False)
    later = failed.model_copy(update={"occurred_at": AT - dt.timedelta(hours=1)})
    [row] = fold_batch([later, succeeded]).mcp_calls
    assert row.status == "succeeded"


def test_an_upcast_outcome_leaves_the_call_facts_unknown_and_the_tool_to_the_request() -> None:
    s = scenario()
    n = s.named
    old = json.loads(CODEC.encode(n["ok_done"]))
    old["schema_version"] = 2
    old["payload"] = {k: old["payload"][k] for k in ("call_id", "result", "revisions")}
    upcast = CODEC.decode(json.dumps(old).encode(), 2, "gateway.tool_call_succeeded")
    assert (upcast.payload.tool, upcast.payload.argument_hash) == ("", "")
    [alone] = fold_batch([upcast]).mcp_calls
    assert (alone.status, alone.tool, alone.arguments, alone.redactions) == (
        "succeeded",
        None,
        None,
        None,
    )
    for batch in ([upcast, n["ok"]], [n["ok"], upcast]):
        [row] = fold_batch(batch).mcp_calls
        assert (row.tool, row.status, row.argument_hash) == ("status__demo", "succeeded", None)


def test_the_request_names_the_tool_whatever_the_gateway_said() -> None:
    request = McpCallRow("acme", "c1", tool="status__demo", requested_at=AT)
    said = McpCallRow(
        "acme", "c1", tool="other", status="blocked", decided_at=AT, decided_event_id=new_event_id()
    )
    assert request.merged(said).tool == said.merged(request).tool == "status__demo"


def _split_and_merge(batches: list[list[Event]]) -> list[McpCallRow]:
    """Fold each batch, then merge the rows by the stored-row rules, as the SQL merge does
    batch after batch."""
    stored: dict[Any, McpCallRow] = {}
    for batch in batches:
        for row in fold_batch(batch).mcp_calls:
            merge_mcp_call(stored, row)
    return sorted(stored.values(), key=lambda row: row.call_id)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_any_interleaving_of_the_topics_gives_the_same_rows(data: st.DataObject) -> None:
    s = scenario()
    expected = sorted(fold_batch(s.events).mcp_calls, key=lambda row: row.call_id)
    order = data.draw(st.permutations(range(len(s.events))))
    repeats = data.draw(st.lists(st.integers(0, len(s.events) - 1), max_size=6))
    shuffled = [s.events[i] for i in order] + [s.events[i] for i in repeats]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(shuffled) - 1), max_size=6)))
    bounds = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds)]
    assert _split_and_merge(batches) == expected
    assert sorted(fold_batch(shuffled).mcp_calls, key=lambda row: row.call_id) == expected


def test_the_checksums_cover_mcp_calls() -> None:
    s, other = scenario(), scenario("globex")
    rows = fold_batch([*s.events, *other.events])
    assert READ_MODEL_TABLES["mcp_calls"] == MCP_CALL_COLUMNS
    digests = checksums_of_rows(rows)
    assert digests.tables["mcp_calls"]["acme"].rows == 8
    assert digests.tables["mcp_calls"]["globex"].rows == 8
    changed = [replace(r, reason="x") if r.project_id == "acme" else r for r in rows.mcp_calls]
    moved = checksums_of_rows(replace(rows, mcp_calls=changed))
    assert moved.tables["mcp_calls"]["acme"].hex != digests.tables["mcp_calls"]["acme"].hex
    assert moved.tables["mcp_calls"]["globex"].hex == digests.tables["mcp_calls"]["globex"].hex

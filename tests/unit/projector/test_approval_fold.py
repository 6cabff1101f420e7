"""The `approvals` fold: given a run's held calls and the approval service's word on each
(a request, counted and refused votes, a grant or a denial), then one row per request
with its state, votes and outcome, whatever order and batches the events arrive in,
however often one is redelivered; never the grant's token, in any column of any read
model. With them: the run's timeline in words, and the approved call's `mcp_calls` row
(its later outcome, its retried attempts, a denial)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.envelope import new_event_id
from awooop.projector.domain.approvals import (
    APPROVAL_COLUMNS,
    APPROVAL_STATES,
    ApprovalRow,
    merge_approval,
)
from awooop.projector.domain.checksums import READ_MODEL_TABLES, checksums_of_rows
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.domain.rows import ReadModelRows
from support.approval_envelopes import (
    TOKEN,
    TOKEN_SIGNATURE,
    ApprovalTraffic,
    approvals_of_a_run,
    token_id_of,
)
from support.mcp_call_envelopes import POLICY_REVISION, Event

pytestmark = pytest.mark.unit

AT = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


@dataclass
class Scenario:
    traffic: ApprovalTraffic
    named: dict[str, Event]

    @property
    def events(self) -> list[Event]:
        return self.traffic.events

    def approval_id(self, name: str) -> Any:
        return self.named[name].payload.approval_id

    def approval_events(self, name: str) -> list[Event]:
        wanted = self.approval_id(name)
        return [
            e
            for e in self.events
            if e.event_type.startswith("approval.") and e.payload.approval_id == wanted
        ]


def scenario(project: str = "acme") -> Scenario:
    t = ApprovalTraffic(project, AT)
    return Scenario(t, approvals_of_a_run(t))


def _rows(events: list[Event]) -> dict[Any, ApprovalRow]:
    return {row.approval_id: row for row in fold_batch(events).approvals}


def test_the_request_gives_a_pending_row_with_what_it_asks() -> None:
    s = scenario()
    asked = s.named["restart_asked"]
    [row] = fold_batch([asked]).approvals
    p = asked.payload
    assert (row.project_id, row.approval_id, row.run_id, row.call_id) == (
        "acme",
        p.approval_id,
        s.traffic.run_id,
        s.named["restart"].payload.call_id,
    )
    assert (row.state, row.tool, row.approvers, row.approvals_required) == (
        "pending",
        "restart__demo",
        ["alice", "bob", "carol"],
        2,
    )
    assert row.arguments == {"service": "cache", "notify": "[REDACTED:email]"}
    assert (row.argument_hash, row.action_hash) == (p.argument_hash, p.action_hash)
    assert (row.policy_revision, row.scope, row.mode) == (POLICY_REVISION, "write", "suggest")
    assert (row.rejections_required, row.requester) == (2, "acme:telegram:42")
    assert (row.expires_at, row.requested_at) == (p.expires_at, asked.occurred_at)
    assert (row.approvals, row.rejections, row.votes) == (0, 0, ())
    assert (row.decided_at, row.token_id, row.outcome_code) == (None, None, None)


def test_each_vote_is_kept_counted_or_refused_with_why() -> None:
    s = scenario()
    n = s.named
    row = _rows(s.events)[s.approval_id("restart_asked")]
    assert (row.approvals, row.rejections) == (2, 0)
    assert [(v["approver_id"], v["vote"], v["via"], v["counted"]) for v in row.votes] == [
        ("alice", "approve", "button", True),
        (None, "approve", "button", False),
        ("bob", "approve", "api", True),
    ]
    alice, requester, _bob = row.votes
    assert alice == {
        "event_id": str(n["alice"].event_id),
        "at": n["alice"].occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "vote": "approve",
        "via": "button",
        "approver_id": "alice",
        "subject": "acme:telegram:alice",
        "counted": True,
        "code": None,
        "reason": None,
    }
    assert (requester["subject"], requester["code"], requester["reason"]) == (
        "acme:telegram:42",
        "E-APPROVAL-REQUESTER",
        "the requester cannot approve their own request",
    )


def test_a_grant_names_who_approved_and_the_token_id_only() -> None:
    s = scenario()
    granted = s.named["restart_granted"]
    row = _rows(s.events)[s.approval_id("restart_asked")]
    assert (row.state, row.decided_by, row.decided_at, row.decided_event_id) == (
        "granted",
        ["alice", "bob"],
        granted.occurred_at,
        granted.event_id,
    )
    assert (row.token_id, row.token_expires_at) == (
        token_id_of(row.approval_id),
        granted.payload.token_expires_at,
    )
    assert (row.outcome_code, row.outcome_reason) == (None, None)


def test_a_denial_keeps_its_code_and_reason_and_who_rejected() -> None:
    s = scenario()
    denied = s.named["drop_denied"]
    row = _rows(s.events)[s.approval_id("drop_asked")]
    assert (row.state, row.outcome_code, row.outcome_reason, row.decided_by) == (
        "denied",
        "E-APPROVAL-REJECTED",
        "rejected by carol, alice",
        ["carol", "alice"],
    )
    assert (row.approvals, row.rejections, row.decided_event_id) == (0, 2, denied.event_id)
    assert (row.token_id, row.token_expires_at) == (None, None)


def test_every_state_is_reached_and_one_row_per_request() -> None:
    s = scenario()
    rows = _rows(s.events)
    assert {row.state for row in rows.values()} == set(APPROVAL_STATES)
    assert len(rows) == 3
    assert rows[s.approval_id("scale_asked")].state == "pending"


def test_every_order_of_a_request_its_votes_and_its_grant_gives_one_row() -> None:
    s = scenario()
    mine = s.approval_events("restart_asked")
    assert [e.event_type for e in mine] == [
        "approval.requested",
        "approval.vote_recorded",
        "approval.vote_refused",
        "approval.vote_recorded",
        "approval.granted",
    ]
    first = fold_batch(mine).approvals
    for order in itertools.permutations(mine):
        assert fold_batch(list(order)).approvals == first
    assert first[0].state == "granted"


def test_a_redelivered_event_changes_nothing() -> None:
    s = scenario()
    once = fold_batch(s.events).approvals
    approvals = [e for e in s.events if e.event_type.startswith("approval.")]
    assert fold_batch([*s.events, *approvals[2:7], approvals[0]]).approvals == once
    for row in once:
        assert row.merged(row) == row


def _split_and_merge(batches: list[list[Event]]) -> list[ApprovalRow]:
    """Fold each batch, then merge the rows by the stored-row rules, as the SQL merge does
    batch after batch."""
    stored: dict[Any, ApprovalRow] = {}
    for batch in batches:
        for row in fold_batch(batch).approvals:
            merge_approval(stored, row)
    return sorted(stored.values(), key=lambda row: row.approval_id)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_any_batches_and_redeliveries_give_the_same_rows(data: st.DataObject) -> None:
    s = scenario()
    expected = sorted(fold_batch(s.events).approvals, key=lambda row: row.approval_id)
    order = data.draw(st.permutations(range(len(s.events))))
    repeats = data.draw(st.lists(st.integers(0, len(s.events) - 1), max_size=6))
    shuffled = [s.events[i] for i in order] + [s.events[i] for i in repeats]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(shuffled) - 1), max_size=6)))
    bounds = [0, *cuts, len(shuffled)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(bounds)]
    assert _split_and_merge(batches) == expected
    assert sorted(fold_batch(shuffled).approvals, key=lambda row: row.approval_id) == expected
    digests = checksums_of_rows(fold_batch(shuffled)).as_json()
    assert digests == checksums_of_rows(fold_batch(s.events)).as_json()


def test_a_later_decision_wins_and_a_decision_outranks_pending_whatever_the_time() -> None:
    s = scenario()
    t, n = s.traffic, s.named
    asked = n["restart_asked"]
    late_request = asked.model_copy(update={"occurred_at": AT + dt.timedelta(hours=1)})
    for batch in ([n["restart_granted"], late_request], [late_request, n["restart_granted"]]):
        [row] = fold_batch(batch).approvals
        assert row.state == "granted"
    low, high = sorted([new_event_id(), new_event_id()])
    same_time = {"occurred_at": n["restart_granted"].occurred_at}
    granted = n["restart_granted"].model_copy(update={"event_id": low, **same_time})
    denied = t.denied(asked, code="E-APPROVAL-EXPIRED", reason="expired").model_copy(
        update={"event_id": high, **same_time}
    )
    for batch in ([granted, denied], [denied, granted]):
        [row] = fold_batch(batch).approvals
        assert (row.state, row.decided_event_id, row.token_id) == ("denied", high, None)


def _every_value(rows: ReadModelRows) -> str:
    """Every column of every row of every read model the batch gives, as text."""
    found: list[Any] = []
    for table in fields(rows):
        for row in getattr(rows, table.name):
            if hasattr(row, "values"):
                found.append(row.values())
            else:
                found.append([getattr(row, f.name) for f in fields(row)])
    return json.dumps(found, default=str)


def test_the_token_is_never_kept_in_any_column_of_any_read_model() -> None:
    s = scenario()
    assert s.named["restart_granted"].payload.token == TOKEN
    assert s.named["restart_approved"].payload.token == TOKEN
    kept = _every_value(fold_batch(s.events))
    assert token_id_of(s.approval_id("restart_asked")) in kept  # the id is shown
    assert TOKEN not in kept
    assert TOKEN_SIGNATURE not in kept
    assert TOKEN.split(".")[1] not in kept


def test_refusal_and_denial_reasons_are_redacted() -> None:
    s = scenario()
    t, n = s.traffic, s.named
    secret = "jane.doe@example.com"
    refused = t.vote_refused(
        n["scale_asked"],
        subject="acme:telegram:77",
        code="E-APPROVAL-NOT-APPROVER",
        reason=f"{secret} is not an approver",
    )
    denied = t.denied(n["scale_asked"], code="E-APPROVAL-EXPIRED", reason=f"mail {secret}")
    rows = fold_batch([n["scale_asked"], refused, denied])
    kept = _every_value(rows)
    assert secret not in kept
    [row] = rows.approvals
    assert row.outcome_reason == "mail [REDACTED:email]"
    assert row.votes[0]["reason"] == "[REDACTED:email] is not an approver"


def test_the_timeline_says_what_happened_in_words() -> None:
    s = scenario()
    n = s.named
    lines = {row.event_id: row.summary for row in fold_batch(s.events).timeline}

    def said(name: str) -> str:
        text: str = lines[n[name].event_id]["text"]
        return text

    expiry = n["restart_asked"].payload.expires_at.isoformat().replace("+00:00", "Z")
    assert said("restart_asked") == (
        f"approval requested for tool restart__demo: 2 of 3 approvers (alice, bob, carol) "
        f"until {expiry}"
    )
    assert said("alice") == "alice approved via button: counted (1 approving, 0 rejecting)"
    assert said("bob") == "bob approved via api: counted (2 approving, 0 rejecting)"
    assert said("carol") == "carol rejected via button: counted (0 approving, 1 rejecting)"
    assert said("requester") == (
        "approve vote by acme:telegram:42 via button refused (E-APPROVAL-REQUESTER): "
        "the requester cannot approve their own request"
    )
    token_id = token_id_of(s.approval_id("restart_asked"))
    assert said("restart_granted").startswith(
        f"approval granted by alice, bob: token {token_id} valid until "
    )
    assert said("drop_denied") == (
        "approval denied by carol, alice (E-APPROVAL-REJECTED): rejected by carol, alice"
    )
    call = n["restart"].payload.call_id
    assert said("restart_approved") == f"approved: the gateway runs {call}"
    assert said("restart_retried") == (
        "tool restart__demo attempt 1 failed (E-MCP-CALL-FAILED): "
        "ConnectionResetError: reset by peer; retry in 0.5 s"
    )
    drop = n["drop"].payload.call_id
    assert said("drop_result") == f"tool call {drop} denied: the agent is told it never ran"
    assert said("restart_result") == "tool result accepted (succeeded)"
    assert lines[n["restart_granted"].event_id]["token_id"] == token_id
    assert TOKEN not in json.dumps(list(lines.values()))
    assert {row.run_id for row in fold_batch(s.events).timeline} == {s.traffic.run_id}


def test_the_run_waits_for_the_approved_call_and_runs_again_after_a_denial() -> None:
    s = scenario()
    n = s.named
    upto = s.events.index(n["restart_approved"]) + 1
    [waiting] = fold_batch(s.events[:upto]).runs
    assert (waiting.state, waiting.last_stream_seq) == (
        "waiting_approval",
        n["restart_approved"].stream_seq,
    )
    upto = s.events.index(n["drop_result"]) + 1
    [running] = fold_batch(s.events[:upto]).runs
    assert (running.state, running.last_stream_seq) == ("running", n["drop_result"].stream_seq)


def test_an_approved_call_s_row_takes_its_later_outcome_and_counts_its_retries() -> None:
    s = scenario()
    t, n = s.traffic, s.named
    call = n["restart"].payload.call_id
    assert (n["restart_held"].stream_seq, n["restart_retried"].stream_seq) == (1, 2)
    assert n["restart_done"].stream_seq == 3
    calls = {row.call_id: row for row in fold_batch(s.events).mcp_calls}
    row = calls[call]
    assert (row.status, row.retries, row.latency_ms) == ("succeeded", 1, 900.0)
    assert row.action_hash == n["restart_held"].payload.action_hash
    assert row.decided_event_id == n["restart_done"].event_id
    second = t.retried(n["restart"], attempt=2, retry_in=1.0)
    mine = [n["restart"], n["restart_held"], n["restart_retried"], second, n["restart_done"]]
    first = fold_batch(mine).mcp_calls
    assert (first[0].retries, first[0].status) == (2, "succeeded")
    for order in itertools.permutations(mine):
        assert fold_batch(list(order)).mcp_calls == first
    [retrying] = fold_batch([n["restart_held"], n["restart_retried"]]).mcp_calls
    assert (retrying.status, retrying.retries) == ("awaiting_approval", 1)
    assert calls[n["scale"].payload.call_id].retries is None


def test_a_denied_approval_is_the_call_s_refusal_at_gate_5() -> None:
    s = scenario()
    n = s.named
    mine = [n["drop"], n["drop_held"], n["drop_denied"]]
    first = fold_batch(mine).mcp_calls
    for order in itertools.permutations(mine):
        assert fold_batch(list(order)).mcp_calls == first
    [row] = first
    assert (row.status, row.gate, row.code, row.reason) == (
        "blocked",
        5,
        "E-APPROVAL-REJECTED",
        "rejected by carol, alice",
    )
    assert (row.tool, row.action_hash, row.decided_event_id) == (
        "drop__demo",
        n["drop_held"].payload.action_hash,
        n["drop_denied"].event_id,
    )


def test_the_checksums_cover_approvals() -> None:
    s, other = scenario(), scenario("globex")
    rows = fold_batch([*s.events, *other.events])
    assert READ_MODEL_TABLES["approvals"] == APPROVAL_COLUMNS
    digests = checksums_of_rows(rows)
    assert digests.tables["approvals"]["acme"].rows == 3
    assert digests.tables["approvals"]["globex"].rows == 3
    changed = [
        replace(r, votes=r.votes[1:]) if r.project_id == "acme" else r for r in rows.approvals
    ]
    moved = checksums_of_rows(replace(rows, approvals=changed))
    assert moved.tables["approvals"]["acme"].hex != digests.tables["approvals"]["acme"].hex
    assert moved.tables["approvals"]["globex"].hex == digests.tables["approvals"]["globex"].hex

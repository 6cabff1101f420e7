"""Approval events folded over the runs they name: given a run waiting for a call, when
the approval service asks, counts a vote, grants or denies, then these run events and
these messages in the run's chat; and the run's stream replays to the same run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    Vote,
    VoteRecorded,
    approval_id_of,
    button_value,
    vote_of_button,
)
from awooop.contracts.events.payloads.channel import MAX_OUTBOUND_TEXT
from awooop.contracts.events.payloads.gateway import ApprovalRequired
from awooop.contracts.records.envelope import Envelope, EventPayload, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_APPROVAL_EXPIRED, E_APPROVAL_REJECTED
from awooop.runtime.domain.approval_messages import ARGUMENTS_SHOWN, ApprovalMessage
from awooop.runtime.domain.batch import BatchWrites, fold_batch, lock_keys
from awooop.runtime.domain.recording import record
from awooop.runtime.domain.replay import replay_run
from awooop.runtime.domain.run import Run, take_step
from awooop.runtime.handlers import STEPS
from support.contracts import agent_body, policy_body, view_of
from support.runtime_inputs import message

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
EXPIRES = NOW + dt.timedelta(minutes=5)
PROJECT = "acme"
SUBJECT = "acme:telegram:42"
RESTART: list[dict[str, Any]] = [
    {"call_tool": "restart__ops", "arguments": {"service": "checkout"}},
    {"reply": "Done: {result}"},
]
AGENT = agent_body(script=RESTART)
VIEW = view_of((PROJECT, {"demo-agent": AGENT, "policy": policy_body("suggest")}))
SHADOW_VIEW = view_of((PROJECT, {"demo-agent": AGENT}))
REVISION = VIEW.refs()[(PROJECT, "demo-agent")]
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJhcHByb3ZhbCJ9.c2lnbmVkLWJ5LXRoZS1hcHByb3Zlcg"
ACTION_HASH = "b" * 64


def waiting_run(state: str = "waiting_approval", mode: str = "suggest") -> Run:
    run_id = uuid.uuid4()
    return Run(
        run_id=run_id,
        project_id=PROJECT,
        platform_subject_id=SUBJECT,
        agent_id="demo-agent",
        channel_type="telegram",
        chat_id="42",
        mode=mode,
        revision=REVISION,
        trace_id=new_trace_id(),
        state=state,
        version=3,
        step=1,
        pending_call_id=f"{run_id}:0",
        thread_id="9",
        reply_to="501",
    )


def approval_event(run: Run, payload: EventPayload, seq: int) -> Envelope[Any]:
    facts: Any = payload
    return new_envelope(
        payload,
        occurred_at=NOW,
        project_id=run.project_id,
        stream_type="approval",
        stream_id=str(facts.approval_id),
        stream_seq=seq,
        trace_id=run.trace_id,
        correlation_id=str(run.run_id),
        actor="service:approval",
        producer="approval",
    )


def facts(run: Run, call_id: str | None = None) -> dict[str, Any]:
    call = call_id or run.pending_call_id or ""
    return {
        "approval_id": approval_id_of(run.project_id, call),
        "run_id": run.run_id,
        "call_id": call,
    }


def requested(run: Run, call_id: str | None = None, *, needed: int = 1) -> Envelope[Any]:
    payload = ApprovalRequested(
        **facts(run, call_id),
        tool="restart__ops",
        arguments={"service": "checkout", "password": "[REDACTED]"},
        argument_hash="c" * 64,
        action_hash=ACTION_HASH,
        scope="write",
        mode="suggest",
        revisions=("tool-rev", "policy-rev"),
        policy_revision="policy-rev",
        approvers=("alice", "bob"),
        approvals_required=needed,
        rejections_required=1,
        requester=SUBJECT,
        expires_at=EXPIRES,
    )
    return approval_event(run, payload, 1)


def vote(
    run: Run, approver: str, how: Vote, seq: int, approvals: int, rejections: int
) -> Envelope[Any]:
    payload = VoteRecorded(
        **facts(run),
        approver_id=approver,
        vote=how,
        via="button",
        subject=f"acme:telegram:{approver}",
        approvals=approvals,
        rejections=rejections,
    )
    return approval_event(run, payload, seq)


def granted(run: Run, seq: int = 2, call_id: str | None = None) -> Envelope[Any]:
    payload = ApprovalGranted(
        **facts(run, call_id),
        approvers=("alice",),
        action_hash=ACTION_HASH,
        token=TOKEN,
        token_id="jti-1",
        token_kid="approval-key-1",
        token_expires_at=NOW + dt.timedelta(minutes=10),
    )
    return approval_event(run, payload, seq)


def denied(run: Run, code: str, seq: int = 2, approvers: tuple[str, ...] = ()) -> Envelope[Any]:
    reasons = {
        E_APPROVAL_REJECTED.code: "the approvers rejected restart__ops",
        E_APPROVAL_EXPIRED.code: "nobody approved restart__ops before it expired",
    }
    payload = ApprovalDenied(**facts(run), code=code, reason=reasons[code], approvers=approvers)
    return approval_event(run, payload, seq)


def fold(
    runs: list[Run],
    envelopes: list[Envelope[Any]],
    *,
    kept: list[ApprovalMessage] | None = None,
    view: Any = VIEW,
) -> BatchWrites:
    return fold_batch(
        runs, envelopes, STEPS, contracts=view, now=NOW, service="runtime", approvals=kept or ()
    )


def of_type(writes: BatchWrites, event_type: str) -> list[Envelope[Any]]:
    return [e for e in writes.events if e.event_type == event_type]


def outbound(writes: BatchWrites) -> list[Any]:
    return [e.payload for e in of_type(writes, "channel.outbound_requested")]


def posted(run: Run, *, needed: int = 1) -> tuple[BatchWrites, ApprovalMessage]:
    """The request posted for the run's call: the writes and what is kept of it."""
    writes = fold([run], [requested(run, needed=needed)])
    (kept,) = writes.approvals.values()
    return writes, kept


@pytest.mark.parametrize("state", ["waiting_approval", "waiting_tool"])
def test_a_request_for_the_call_the_run_waits_for_is_posted_with_two_buttons(state: str) -> None:
    run = waiting_run(state)
    request = requested(run)
    assert lock_keys([request]) == ([run.run_id], [])
    writes, kept = posted(run)
    (event,) = writes.events
    approval_id = request.payload.approval_id
    assert (event.event_type, event.stream_id, event.stream_seq) == (
        "channel.outbound_requested",
        f"outbound:{run.run_id}:{approval_id}:1",
        1,
    )
    said = event.payload
    assert (said.kind, said.chat_id, said.thread_id, said.reply_to) == (
        "approval_request",
        "42",
        "9",
        "501",
    )
    assert said.edit_of is None
    assert said.deliver_before == EXPIRES
    assert [(b.label, b.value) for b in said.buttons] == [
        ("Approve", button_value("approve", approval_id)),
        ("Reject", button_value("reject", approval_id)),
    ]
    assert [vote_of_button(b.value) for b in said.buttons] == [
        ("approve", approval_id),
        ("reject", approval_id),
    ]
    assert "restart__ops" in said.text
    assert '{"password":"[REDACTED]","service":"checkout"}' in said.text
    assert f"Asked by: {SUBJECT}" in said.text
    assert "Needs 1 approval of 2 approvers, until 2026-03-01 12:05:00 UTC." in said.text
    # The run does not move; the request's message is kept for later edits.
    assert writes.updates == {}
    assert writes.inserts == {}
    assert (kept.approval_id, kept.request_event_id, kept.last_seq, kept.outcome) == (
        approval_id,
        event.event_id,
        1,
        None,
    )


def test_a_shadow_run_posts_no_request() -> None:
    run = waiting_run(mode="shadow")
    writes = fold([run], [requested(run)], view=SHADOW_VIEW)
    assert writes.events == []
    (kept,) = writes.approvals.values()
    assert kept.request_event_id is None


def test_a_request_for_another_call_or_an_ended_run_posts_nothing() -> None:
    run = waiting_run()
    other = fold([run], [requested(run, f"{run.run_id}:7")])
    ended = dataclasses.replace(run, state="completed", pending_call_id=None)
    after_end = fold([ended], [requested(run)])
    unknown = fold([], [requested(run)])
    for writes in (other, after_end, unknown):
        assert writes.events == []
        assert writes.approvals == {}


def test_arguments_are_shown_compact_and_bounded() -> None:
    run = waiting_run()
    request = requested(run)
    huge = request.model_copy(
        update={"payload": request.payload.model_copy(update={"arguments": {"blob": "x" * 50_000}})}
    )
    (said,) = outbound(fold([run], [huge]))
    shown = said.text.split("Arguments: ", 1)[1].split("\n", 1)[0]
    assert len(shown) == ARGUMENTS_SHOWN
    assert shown.endswith("…")
    assert len(said.text) < MAX_OUTBOUND_TEXT


def test_votes_edit_the_request_in_place_and_keep_its_buttons() -> None:
    run = waiting_run()
    first, kept = posted(run, needed=2)
    request_id = first.events[0].event_id
    writes = fold(
        [run],
        [vote(run, "alice", "approve", 2, 1, 0), vote(run, "bob", "reject", 3, 1, 1)],
        kept=[kept],
    )
    edits = outbound(writes)
    assert [e.edit_of for e in edits] == [request_id, request_id]
    assert all(len(e.buttons) == 2 for e in edits)
    assert "Approvals: 1 of 2 needed (alice)." in edits[0].text
    assert "Rejections" not in edits[0].text
    assert "Approvals: 1 of 2 needed (alice)." in edits[1].text
    assert "Rejections: 1 of 1 to reject it (bob)." in edits[1].text
    assert [e.stream_id for e in of_type(writes, "channel.outbound_requested")] == [
        f"outbound:{run.run_id}:{kept.approval_id}:2",
        f"outbound:{run.run_id}:{kept.approval_id}:3",
    ]
    assert writes.updates == {}
    after = writes.approvals[kept.approval_id]
    assert (after.approved_by, after.rejected_by, after.last_seq) == (("alice",), ("bob",), 3)


def test_a_grant_for_the_awaited_call_hands_the_token_to_the_gateway_and_edits_the_request() -> (
    None
):
    run = waiting_run()
    first, kept = posted(run)
    grant = granted(run)
    writes = fold([run], [grant], kept=[kept])
    (approved,) = of_type(writes, "run.tool_call_approved")
    assert (approved.stream_id, approved.stream_seq) == (str(run.run_id), run.version + 1)
    assert approved.payload.call_id == run.pending_call_id
    assert approved.payload.approval_id == kept.approval_id
    assert approved.payload.token == TOKEN
    assert approved.causation_id == str(grant.event_id)
    (edit,) = outbound(writes)
    assert edit.edit_of == first.events[0].event_id
    assert edit.buttons == ()
    assert "Approved by alice: running it now." in edit.text
    # The run waits on for the call's outcome, its lease and timers untouched.
    written = writes.updates[run.run_id]
    assert (written.run.state, written.run.pending_call_id) == (
        "waiting_approval",
        run.pending_call_id,
    )
    assert (written.run.version, written.saved, written.due) == (run.version + 1, False, False)
    assert writes.approvals[kept.approval_id].outcome == "granted"


def test_a_grant_for_another_call_or_a_run_no_longer_waiting_changes_nothing() -> None:
    run = waiting_run()
    _, kept = posted(run)
    resumed = dataclasses.replace(run, state="running", pending_call_id=None)
    cancelled = dataclasses.replace(run, state="cancelled")
    for locked, grant in (
        (run, granted(run, call_id=f"{run.run_id}:7")),
        (resumed, granted(run)),
        (cancelled, granted(run)),
    ):
        writes = fold([locked], [grant], kept=[kept])
        assert writes.events == []
        assert writes.updates == {}
        assert writes.approvals == {}


def test_a_grant_redelivered_after_it_was_taken_changes_nothing() -> None:
    run = waiting_run()
    _, kept = posted(run)
    first = fold([run], [granted(run)], kept=[kept])
    again = fold(
        [first.updates[run.run_id].run], [granted(run)], kept=list(first.approvals.values())
    )
    assert again.events == []
    assert again.updates == {}


def test_a_rejection_reaches_the_agent_as_the_calls_result_and_the_run_goes_on() -> None:
    run = waiting_run()
    first, kept = posted(run)
    writes = fold([run], [denied(run, E_APPROVAL_REJECTED.code, approvers=("bob",))], kept=[kept])
    (accepted,) = of_type(writes, "run.tool_result_accepted")
    assert accepted.payload.call_id == run.pending_call_id
    assert accepted.payload.outcome == "denied"
    result = {"code": "E-APPROVAL-REJECTED", "reason": "the approvers rejected restart__ops"}
    assert accepted.payload.result == result
    written = writes.updates[run.run_id]
    assert (written.run.state, written.run.pending_call_id, written.run.last_result) == (
        "running",
        None,
        result,
    )
    assert (written.saved, written.due) == (True, True)
    (edit,) = outbound(writes)
    assert (edit.edit_of, edit.buttons) == (first.events[0].event_id, ())
    assert "Rejected by bob: it will not run." in edit.text
    assert writes.approvals[kept.approval_id].outcome == "denied"


def test_an_expired_request_says_so_and_the_run_waiting_for_its_tool_goes_on() -> None:
    run = waiting_run("waiting_tool")
    _, kept = posted(run)
    writes = fold([run], [denied(run, E_APPROVAL_EXPIRED.code)], kept=[kept])
    assert [e.event_type for e in writes.events] == [
        "run.tool_result_accepted",
        "channel.outbound_requested",
    ]
    assert writes.updates[run.run_id].run.state == "running"
    (edit,) = outbound(writes)
    assert "Expired: not approved in time, it will not run." in edit.text


def test_a_denial_after_the_run_ended_only_takes_the_buttons_away() -> None:
    run = waiting_run()
    _, kept = posted(run)
    cancelled = dataclasses.replace(run, state="cancelled")
    writes = fold([cancelled], [denied(run, E_APPROVAL_EXPIRED.code)], kept=[kept])
    assert [e.event_type for e in writes.events] == ["channel.outbound_requested"]
    assert writes.updates == {}
    assert outbound(writes)[0].buttons == ()


def test_a_whole_approval_in_one_batch_and_its_redelivery_say_and_decide_once() -> None:
    run = waiting_run()
    batch = [
        requested(run, needed=2),
        vote(run, "alice", "approve", 2, 1, 0),
        vote(run, "bob", "approve", 3, 2, 0),
        granted(run, seq=4),
    ]
    writes = fold([run], batch)
    assert [e.event_type for e in writes.events] == [
        "channel.outbound_requested",
        "channel.outbound_requested",
        "channel.outbound_requested",
        "run.tool_call_approved",
        "channel.outbound_requested",
    ]
    # Deciding the same batch again from the same rows gives the same streams: the event
    # store's unique key refuses a second copy.
    decided_again = fold([run], batch)
    assert [(e.stream_id, e.stream_seq) for e in decided_again.events] == [
        (e.stream_id, e.stream_seq) for e in writes.events
    ]
    # Once stored, the batch redelivered past the inbox decides nothing at all.
    redelivered = fold(
        [writes.updates[run.run_id].run], batch, kept=list(writes.approvals.values())
    )
    assert redelivered.events == []
    assert redelivered.approvals == {}
    assert all(TOKEN not in e.payload.text for e in of_type(writes, "channel.outbound_requested"))


def test_an_approval_event_of_another_project_touches_no_run() -> None:
    run = waiting_run()
    foreign = granted(run).model_copy(update={"project_id": "other"})
    writes = fold([run], [foreign])
    assert writes.events == []
    assert writes.approvals == {}


def _held(run: Run) -> Envelope[Any]:
    call_id = run.pending_call_id or ""
    return new_envelope(
        ApprovalRequired(
            call_id=call_id, tool="restart__ops", action_hash=ACTION_HASH, revisions=()
        ),
        occurred_at=NOW,
        project_id=PROJECT,
        stream_type="tool_call",
        stream_id=call_id,
        stream_seq=1,
        trace_id=run.trace_id,
        correlation_id=str(run.run_id),
        actor="service:mcp_gateway",
        producer="mcp_gateway",
    )


def _run_stream(writes: BatchWrites) -> list[Envelope[Any]]:
    return [e for e in writes.events if e.stream_type == "run"]


@pytest.mark.parametrize("decided", ["granted", "denied"])
def test_the_runs_stream_replays_to_the_run_after_a_grant_or_a_denial(decided: str) -> None:
    start = message(PROJECT, "42", "restart checkout please")
    started = fold([], [start])
    run = started.inserts[start.event_id].run
    agent = VIEW.agent(PROJECT, "demo-agent")
    assert agent is not None
    asked, events = record(
        take_step(run, agent.document, NOW),
        run.version,
        causation_id=None,
        now=NOW,
        service="runtime",
    )
    assert asked.state == "waiting_tool"
    stream = _run_stream(started) + events
    held = fold([asked], [_held(asked), requested(asked)])
    stream += _run_stream(held)
    waiting = held.updates[asked.run_id].run
    kept = list(held.approvals.values())
    if decided == "granted":
        answer = fold([waiting], [granted(asked)], kept=kept)
    else:
        answer = fold(
            [waiting], [denied(asked, E_APPROVAL_REJECTED.code, approvers=("bob",))], kept=kept
        )
    stream += _run_stream(answer)
    final = answer.updates[asked.run_id].run
    assert replay_run(stream) == final
    if decided == "granted":
        assert (final.state, final.pending_call_id) == ("waiting_approval", asked.pending_call_id)
    else:
        assert final.state == "running"
        # The scripted agent answers with the denial as its call's result.
        replied, _ = record(
            take_step(final, agent.document, NOW),
            final.version,
            causation_id=None,
            now=NOW,
            service="runtime",
        )
        assert replied.state == "completed"

"""The runtime as the approval flow's messenger, on the embedded stack: a suggest-mode run
whose scripted step calls a write tool is held by the gateway (`gateway.approval_required`,
produced here in the gateway's place); the approval service's events (produced here in
its place) become an `approval_request` message with Approve and Reject buttons on
`awooop.channel.outbound.v1`, edits of it, and, for the run, a grant handed to the
gateway (`run.tool_call_approved`) or a denial given to the agent as its call's result."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    VoteRecorded,
    approval_id_of,
    button_value,
)
from awooop.contracts.events.payloads.gateway import ApprovalRequired
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, EventPayload
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.errors import E_APPROVAL_REJECTED
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceRunner
from awooop.runtime.adapters import runs
from awooop.runtime.app import spec
from awooop.runtime.domain.replay import replay_run
from awooop.runtime.domain.run import Run
from support.contracts import agent_body, granting, policy_body, publish_contracts
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for
from support.runtime_inputs import gateway_answer, message, send, tool_result
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJydW50aW1lLWFwcHJvdmFsIn0.aW50ZWdyYXRpb24tc2lnbmF0dXJl"
ACTION_HASH = "d" * 64
RESTARTING_AGENT = granting(
    agent_body(
        script=[
            {"call_tool": "restart__demo", "arguments": {"service": "checkout"}},
            {"reply": "Outcome: {result}"},
        ]
    ),
    ("restart__demo", "write"),
)


@pytest.fixture(scope="module")
async def runner(kafka_ready: StackUrls) -> AsyncIterator[ServiceRunner]:
    """The whole runtime (consumer, steps, relay); no gateway or approval service runs:
    the tests speak for them."""
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


@pytest.fixture(scope="module")
async def project(kafka_ready: StackUrls, runner: ServiceRunner) -> str:
    """A project in suggest mode whose demo agent restarts checkout, once the runtime
    reads its contracts."""
    project = unique("rtap")
    documents = {"demo-agent": RESTARTING_AGENT, "policy": policy_body("suggest")}
    refs = await publish_contracts(kafka_ready.settings(), project, documents)
    assert runner.contracts is not None
    source = runner.contracts

    def applied() -> bool:
        known = source.view.refs()
        return all(known.get((project, name)) == ref for name, ref in refs.items())

    await wait_for(applied, within=20, message="the runtime to read the contracts")
    return project


def _approval_event(request: Envelope[Any], payload: EventPayload, seq: int) -> Envelope[Any]:
    """An event of the approval of `request`'s call, as the approval service writes it."""
    return new_envelope(
        payload,
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=request.project_id,
        stream_type="approval",
        stream_id=str(approval_id_of(request.project_id, request.payload.call_id)),
        stream_seq=seq,
        trace_id=request.trace_id,
        correlation_id=request.correlation_id,
        actor="service:approval",
        producer="approval",
    )


def _facts(request: Envelope[Any]) -> dict[str, Any]:
    call_id = request.payload.call_id
    return {
        "approval_id": approval_id_of(request.project_id, call_id),
        "run_id": uuid.UUID(request.correlation_id),
        "call_id": call_id,
    }


def _requested(request: Envelope[Any], subject: str) -> Envelope[Any]:
    payload = ApprovalRequested(
        **_facts(request),
        tool=request.payload.tool,
        arguments=request.payload.arguments,
        argument_hash="",
        action_hash=ACTION_HASH,
        scope="write",
        mode="suggest",
        revisions=("policy-rev",),
        policy_revision="policy-rev",
        approvers=("alice", "bob"),
        approvals_required=1,
        rejections_required=1,
        requester=subject,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    return _approval_event(request, payload, 1)


class Flow:
    """One run of the project driven up to `waiting_approval` and answered by the test."""

    def __init__(self, urls: StackUrls, runner: ServiceRunner, project: str, user: str) -> None:
        self.urls, self.runner, self.project = urls, runner, project
        self.first = message(project, user, "restart checkout please")
        self.run_id = str(self.first.event_id)
        self.subject = self.first.payload.platform_subject_id

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.runner.pool is not None
        return self.runner.pool

    async def to_gateway(self, env: Envelope[Any]) -> None:
        await send(self.urls, Topics.GATEWAY_EVENTS.name, self.run_id, env)

    async def to_runtime(self, env: Envelope[Any]) -> None:
        await send(self.urls, Topics.APPROVAL_EVENTS.name, self.run_id, env)

    def of_run(self, seen: list[Envelope[Any]], event_type: str) -> list[Envelope[Any]]:
        return [e for e in seen if e.event_type == event_type and e.correlation_id == self.run_id]

    def said(self, seen: list[Envelope[Any]]) -> list[Envelope[Any]]:
        return self.of_run(seen, "channel.outbound_requested")

    async def held(self, run_events: TopicReader) -> Envelope[Any]:
        """Start the run and hold its call for approval; its tool call request."""
        key = f"{self.project}:{self.subject}"
        await send(self.urls, Topics.INGRESS_EVENTS.name, key, self.first)
        seen = await run_events.until(lambda s: bool(self.of_run(s, "run.tool_call_requested")))
        (request,) = self.of_run(seen, "run.tool_call_requested")
        assert request.payload.tool == "restart__demo"
        required = ApprovalRequired(
            call_id=request.payload.call_id,
            tool=request.payload.tool,
            arguments=request.payload.arguments,
            action_hash=ACTION_HASH,
            revisions=("tool-rev", "policy-rev"),
            scope="write",
            mode="suggest",
        )
        await self.to_gateway(gateway_answer(request, required))
        await run_events.until(lambda s: bool(self.of_run(s, "run.approval_awaited")))
        return request

    async def stored_run(self) -> Run:
        row = await self.pool.fetchrow(
            f"SELECT {runs.COLUMNS} FROM runs WHERE run_id = $1", self.first.event_id
        )
        return runs.run_of(row)

    async def replayed(self) -> Run:
        data = await self.pool.fetch(
            "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq", self.run_id
        )
        return replay_run(CODEC.decode(bytes(r["data"])) for r in data)


async def test_a_granted_request_is_posted_edited_and_handed_to_the_gateway(
    kafka_ready: StackUrls, runner: ServiceRunner, project: str
) -> None:
    flow = Flow(kafka_ready, runner, project, "71")
    async with (
        TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as run_events,
        TopicReader(kafka_ready.kafka, Topics.CHANNEL_OUTBOUND.name) as outbound,
    ):
        request = await flow.held(run_events)
        approval_id = approval_id_of(project, request.payload.call_id)
        asked = _requested(request, flow.subject)
        await flow.to_runtime(asked)
        seen = await outbound.until(lambda s: len(flow.said(s)) == 1)
        (posted,) = flow.said(seen)
        said = posted.payload
        assert (said.kind, said.chat_id, said.edit_of) == ("approval_request", "71", None)
        assert [(b.label, b.value) for b in said.buttons] == [
            ("Approve", button_value("approve", approval_id)),
            ("Reject", button_value("reject", approval_id)),
        ]
        assert "restart__demo" in said.text
        assert '{"service":"checkout"}' in said.text
        assert f"Asked by: {flow.subject}" in said.text
        assert "Needs 1 approval of 2 approvers" in said.text
        assert said.deliver_before == asked.payload.expires_at

        # The request again under a new event id (as past the inbox horizon), then a vote:
        # the vote's edit is the second message, so the request was not posted twice.
        await flow.to_runtime(asked.model_copy(update={"event_id": uuid.uuid4()}))
        counted = VoteRecorded(
            **_facts(request),
            approver_id="alice",
            vote="approve",
            via="button",
            subject=f"{project}:telegram:alice",
            approvals=1,
            rejections=0,
        )
        await flow.to_runtime(_approval_event(request, counted, 2))
        seen = await outbound.until(lambda s: len(flow.said(s)) == 2)
        vote_edit = flow.said(seen)[1].payload
        assert vote_edit.edit_of == posted.event_id
        assert len(vote_edit.buttons) == 2
        assert "Approvals: 1 of 1 needed (alice)." in vote_edit.text

        grant = ApprovalGranted(
            **_facts(request),
            approvers=("alice",),
            action_hash=ACTION_HASH,
            token=TOKEN,
            token_id="jti-runtime-approvals",
            token_kid="approval-key-1",
            token_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
        )
        await flow.to_runtime(_approval_event(request, grant, 3))
        seen_runs = await run_events.until(lambda s: bool(flow.of_run(s, "run.tool_call_approved")))
        (approved,) = flow.of_run(seen_runs, "run.tool_call_approved")
        assert approved.payload.call_id == request.payload.call_id
        assert approved.payload.approval_id == approval_id
        assert approved.payload.token == TOKEN
        seen = await outbound.until(lambda s: len(flow.said(s)) == 3)
        grant_edit = flow.said(seen)[2].payload
        assert (grant_edit.edit_of, grant_edit.buttons) == (posted.event_id, ())
        assert "Approved by alice: running it now." in grant_edit.text
        assert (await flow.stored_run()).state == "waiting_approval"

        # The gateway ran the approved call: the run resumes and answers.
        await flow.to_gateway(tool_result(request))
        seen_runs = await run_events.until(lambda s: bool(flow.of_run(s, "run.completed")))
        (completed,) = flow.of_run(seen_runs, "run.completed")
        assert "healthy" in completed.payload.reply
        seen = await outbound.until(lambda s: any(e.payload.kind == "final" for e in flow.said(s)))
    assert [e.payload.kind for e in flow.said(seen)] == [
        "approval_request",
        "approval_request",
        "approval_request",
        "final",
    ]
    assert all(TOKEN not in e.payload.text for e in flow.said(seen))
    assert len(flow.of_run(seen_runs, "run.tool_call_approved")) == 1
    stored = await flow.stored_run()
    assert stored.state == "completed"
    assert await flow.replayed() == stored
    kept = await flow.pool.fetchrow(
        "SELECT request_event_id, outcome, last_seq, approved_by::text AS approved_by "
        "FROM approval_messages WHERE approval_id = $1",
        approval_id,
    )
    assert dict(kept) == {
        "request_event_id": posted.event_id,
        "outcome": "granted",
        "last_seq": 3,
        "approved_by": '["alice"]',
    }


async def test_a_rejected_request_reaches_the_agent_and_the_run_completes(
    kafka_ready: StackUrls, runner: ServiceRunner, project: str
) -> None:
    flow = Flow(kafka_ready, runner, project, "72")
    async with (
        TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as run_events,
        TopicReader(kafka_ready.kafka, Topics.CHANNEL_OUTBOUND.name) as outbound,
    ):
        request = await flow.held(run_events)
        await flow.to_runtime(_requested(request, flow.subject))
        seen = await outbound.until(lambda s: len(flow.said(s)) == 1)
        (posted,) = flow.said(seen)
        denial = ApprovalDenied(
            **_facts(request),
            code=E_APPROVAL_REJECTED.code,
            reason="bob rejected restart__demo",
            approvers=("bob",),
        )
        await flow.to_runtime(_approval_event(request, denial, 2))
        seen_runs = await run_events.until(lambda s: bool(flow.of_run(s, "run.completed")))
        seen = await outbound.until(lambda s: any(e.payload.kind == "final" for e in flow.said(s)))
    (accepted,) = flow.of_run(seen_runs, "run.tool_result_accepted")
    assert accepted.payload.outcome == "denied"
    assert accepted.payload.result == {
        "code": "E-APPROVAL-REJECTED",
        "reason": "bob rejected restart__demo",
    }
    assert flow.of_run(seen_runs, "run.tool_call_approved") == []
    (completed,) = flow.of_run(seen_runs, "run.completed")
    assert completed.payload.reply == (
        "Outcome: code: E-APPROVAL-REJECTED, reason: bob rejected restart__demo"
    )
    messages = [e.payload for e in flow.said(seen)]
    assert [m.kind for m in messages] == ["approval_request", "approval_request", "final"]
    assert (messages[1].edit_of, messages[1].buttons) == (posted.event_id, ())
    assert "Rejected by bob: it will not run." in messages[1].text
    stored = await flow.stored_run()
    assert stored.state == "completed"
    assert await flow.replayed() == stored

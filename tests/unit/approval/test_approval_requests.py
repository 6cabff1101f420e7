"""An approval request from a held call to its decision: k of n distinct approvers, never
the requester, one person once however they vote, one reject, the expiry.

Given a request made from a held call under a policy, when votes arrive, then these
events and this state.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from awooop.approval.domain.requests import (
    ApprovalRequest,
    MintedToken,
    VoteAnswer,
    cast_vote,
    expire,
    request_for,
)
from awooop.approval.processor import run_began
from awooop.contracts.events.payloads.approval import (
    ApprovalDenied,
    ApprovalGranted,
    ApprovalRequested,
    VoteRecorded,
    VoteRefused,
    approval_id_of,
)
from awooop.contracts.events.payloads.gateway import ApprovalRequired
from awooop.contracts.families.policy import Policy
from awooop.contracts.registries.errors import (
    E_APPROVAL_DECIDED,
    E_APPROVAL_DUPLICATE,
    E_APPROVAL_EXPIRED,
    E_APPROVAL_NOT_APPROVER,
    E_APPROVAL_POLICY,
    E_APPROVAL_REJECTED,
    E_APPROVAL_REQUESTER,
)

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
PROJECT = "acme"
RUN = str(uuid.UUID(int=7))
REQUESTER = "acme:telegram:100"
POLICY_REF = "policy@3:abcdef012345"
APPROVERS = [
    # Carol asked (her chat subject is the requester's): she never decides this request.
    {"approver_id": "carol", "chat_subjects": [REQUESTER], "api_subject": "sso:carol"},
    {"approver_id": "alice", "chat_subjects": ["acme:telegram:201"], "api_subject": "sso:alice"},
    {"approver_id": "bob", "chat_subjects": ["acme:slack:U02"], "api_subject": "sso:bob"},
    {"approver_id": "dave", "chat_subjects": ["acme:telegram:204"], "api_subject": "sso:dave"},
]


class CountingMinter:
    """Mints a recognisable token and counts how often it was asked."""

    def __init__(self) -> None:
        self.minted: list[tuple[uuid.UUID, dt.datetime]] = []

    def __call__(self, request: ApprovalRequest, at: dt.datetime) -> MintedToken:
        self.minted.append((request.approval_id, at))
        token = f"header.{request.approval_id.hex}.signature"
        return MintedToken(token, f"jti-{request.approval_id}", "k1", at + dt.timedelta(minutes=10))


def policy(k: int = 2, expiry: int = 300, approvers: list[dict[str, Any]] | None = None) -> Policy:
    return Policy.model_validate(
        {
            "family": "policy",
            "schema_version": 1,
            "mode": "suggest",
            "approvers": approvers if approvers is not None else APPROVERS,
            "approvals_required": k,
            "approval_expiry_seconds": expiry,
            "rate_limits": [],
            "approval_required_tools": [],
        }
    )


def held(call_id: str = "call-1") -> ApprovalRequired:
    return ApprovalRequired(
        call_id=call_id,
        tool="restart_service__demo",
        argument_hash="a" * 64,
        arguments={"service": "checkout"},
        action_hash="b" * 64,
        revisions=("restart_service__demo@1:aaaaaaaaaaaa", POLICY_REF),
        scope="write",
        mode="suggest",
    )


def made(
    rules: Policy | None = None, *, deadline: dt.datetime | None = None
) -> tuple[ApprovalRequest, tuple[Any, ...]]:
    decision = request_for(
        held(),
        approval_id=approval_id_of(PROJECT, "call-1"),
        project_id=PROJECT,
        run_id=RUN,
        policy=rules if rules is not None else policy(),
        policy_ref=POLICY_REF,
        requester=REQUESTER,
        run_deadline=deadline,
        at=T0,
    )
    return decision.request, decision.payloads


def vote(
    request: ApprovalRequest,
    subject: str,
    choice: str = "approve",
    *,
    via: str = "button",
    minutes: float = 1,
    mint: CountingMinter | None = None,
) -> VoteAnswer:
    return cast_vote(
        request,
        vote=choice,  # type: ignore[arg-type]
        via=via,  # type: ignore[arg-type]
        subject=subject,
        at=T0 + dt.timedelta(minutes=minutes),
        mint=mint or CountingMinter(),
    )


def test_a_held_call_becomes_a_request_naming_its_approvers_k_and_expiry() -> None:
    request, (requested,) = made()
    assert isinstance(requested, ApprovalRequested)
    assert requested.approval_id == approval_id_of(PROJECT, "call-1")
    assert requested.approvers == ("carol", "alice", "bob", "dave")
    assert (requested.approvals_required, requested.rejections_required) == (2, 1)
    assert requested.requester == REQUESTER
    assert requested.expires_at == T0 + dt.timedelta(seconds=300)
    assert requested.policy_revision == POLICY_REF
    assert requested.arguments == {"service": "checkout"}
    assert request.state == "pending"


def test_the_expiry_never_outlasts_the_run() -> None:
    deadline = T0 + dt.timedelta(seconds=90)
    request, (requested,) = made(deadline=deadline)
    assert requested.expires_at == request.expires_at == deadline


def test_two_of_three_one_approval_waits_and_a_second_distinct_approver_grants() -> None:
    mint = CountingMinter()
    request, _ = made()
    first = vote(request, "acme:telegram:201", mint=mint)
    assert first.counted
    (recorded,) = first.decision.payloads
    assert isinstance(recorded, VoteRecorded)
    assert (recorded.approver_id, recorded.approvals, recorded.rejections) == ("alice", 1, 0)
    assert first.decision.request.state == "pending"
    assert mint.minted == []

    second = vote(first.decision.request, "sso:bob", via="api", minutes=2, mint=mint)
    recorded, granted = second.decision.payloads
    assert isinstance(recorded, VoteRecorded)
    assert recorded.approvals == 2
    assert isinstance(granted, ApprovalGranted)
    assert granted.approvers == ("alice", "bob")
    assert granted.action_hash == "b" * 64
    assert granted.token_id == f"jti-{request.approval_id}"
    assert second.decision.request.state == "granted"
    assert mint.minted == [(request.approval_id, T0 + dt.timedelta(minutes=2))]


def test_the_requester_never_approves_their_own_request_by_button_or_api() -> None:
    request, _ = made()
    for subject, via in ((REQUESTER, "button"), ("sso:carol", "api")):
        answer = vote(request, subject, via=via)
        assert not answer.counted
        (refused,) = answer.decision.payloads
        assert isinstance(refused, VoteRefused)
        assert refused.code == E_APPROVAL_REQUESTER.code == answer.code
        assert answer.decision.request == request  # nothing counted


def test_a_duplicate_vote_counts_once_even_by_another_way_of_voting() -> None:
    request, _ = made()
    first = vote(request, "acme:telegram:201")
    # The same person (alice) again by button, then over the API with her API subject.
    for subject, via in (("acme:telegram:201", "button"), ("sso:alice", "api")):
        again = vote(first.decision.request, subject, via=via, minutes=2)
        assert (again.counted, again.code) == (False, E_APPROVAL_DUPLICATE.code)
        assert again.decision.request.count("approve") == 1
        assert again.decision.request.state == "pending"


def test_a_press_by_someone_who_is_no_approver_is_refused_and_recorded() -> None:
    request, _ = made()
    answer = vote(request, "acme:telegram:999")
    (refused,) = answer.decision.payloads
    assert isinstance(refused, VoteRefused)
    assert (refused.code, refused.approver_id, refused.subject) == (
        E_APPROVAL_NOT_APPROVER.code,
        None,
        "acme:telegram:999",
    )
    # A subject of another channel or the API subject as a chat subject is no match either.
    assert vote(request, "sso:alice", via="button").code == E_APPROVAL_NOT_APPROVER.code
    assert vote(request, "acme:telegram:201", via="api").code == E_APPROVAL_NOT_APPROVER.code


def test_one_reject_rejects() -> None:
    request, _ = made()
    approved = vote(request, "acme:telegram:201").decision.request
    answer = vote(approved, "acme:slack:U02", "reject", minutes=2)
    recorded, denied = answer.decision.payloads
    assert isinstance(recorded, VoteRecorded)
    assert recorded.rejections == 1
    assert isinstance(denied, ApprovalDenied)
    assert (denied.code, denied.approvers) == (E_APPROVAL_REJECTED.code, ("bob",))
    assert answer.decision.request.state == "denied"


def test_an_expired_request_ends_denied_and_takes_no_vote() -> None:
    mint = CountingMinter()
    request, _ = made()
    first = vote(request, "acme:telegram:201").decision.request
    ended = expire(first, T0 + dt.timedelta(seconds=300))
    (denied,) = ended.payloads
    assert isinstance(denied, ApprovalDenied)
    assert denied.code == E_APPROVAL_EXPIRED.code
    assert "1 of 2 approvals" in denied.reason
    assert ended.request.state == "denied"
    late = vote(ended.request, "sso:bob", via="api", minutes=6, mint=mint)
    assert (late.counted, late.code) == (False, E_APPROVAL_DECIDED.code)
    assert mint.minted == []
    # A vote cast after the expiry (even before the expiry was recorded) counts for nothing.
    after = vote(first, "sso:bob", via="api", minutes=5, mint=mint)
    assert (after.counted, after.code) == (False, E_APPROVAL_DECIDED.code)
    assert expire(ended.request, T0 + dt.timedelta(hours=1)).payloads == ()


def test_a_vote_on_a_granted_request_is_refused_and_mints_nothing_more() -> None:
    mint = CountingMinter()
    request, _ = made(policy(k=1))
    granted = vote(request, "acme:telegram:201", mint=mint).decision.request
    assert granted.state == "granted"
    late = vote(granted, "sso:bob", via="api", minutes=2, mint=mint)
    assert (late.counted, late.code) == (False, E_APPROVAL_DECIDED.code)
    assert len(mint.minted) == 1


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        (None, "is not known"),
        (policy(k=5), "needs 5 approvals of 4 approvers"),
        (
            policy(
                k=1,
                approvers=[
                    {"approver_id": "a", "chat_subjects": ["acme:slack:U1"], "api_subject": "x"},
                    {"approver_id": "b", "chat_subjects": ["acme:slack:U1"], "api_subject": "y"},
                ],
            ),
            "belongs to both 'a' and 'b'",
        ),
    ],
)
def test_a_policy_that_cannot_decide_denies_at_once(rules: Policy | None, problem: str) -> None:
    decision = request_for(
        held(),
        approval_id=approval_id_of(PROJECT, "call-1"),
        project_id=PROJECT,
        run_id=RUN,
        policy=rules,
        policy_ref=POLICY_REF if rules else "",
        requester=REQUESTER,
        run_deadline=None,
        at=T0,
    )
    (denied,) = decision.payloads
    assert isinstance(denied, ApprovalDenied)
    assert denied.code == E_APPROVAL_POLICY.code
    assert problem in denied.reason
    assert decision.request.state == "denied"


def test_a_request_only_the_requester_could_complete_is_denied_at_once() -> None:
    # Two approvals needed of carol (who asked) and alice: never reachable.
    rules = policy(k=2, approvers=APPROVERS[:2])
    request, (denied,) = made(rules)
    assert isinstance(denied, ApprovalDenied)
    assert denied.code == E_APPROVAL_POLICY.code
    assert "only 1 approvers are not the person who asked" in denied.reason
    assert request.state == "denied"


def test_a_run_began_when_its_message_was_recorded() -> None:
    # The run id is the UUIDv7 event id of the message that started it.
    began = dt.datetime(2026, 12, 7, 9, 30, 15, 123000, tzinfo=dt.UTC)
    millis = int(began.timestamp() * 1000)
    run_id = uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | 12345)
    assert run_id.version == 7
    assert run_began(str(run_id), T0) == began
    assert run_began(str(uuid.uuid4()), T0) == T0  # no time in it: the event's own

"""`awooop approvals list | approve | reject`: the listing against a stand-in query API (its
filters become query parameters, one line per request under a header); a vote against a
stand-in of the approval service's decision API that answers as the real one does (200
counted, 403/409 refused with its body, 401 and 403 for a token, 404 unknown, 422 bad
body, a broken proxy, no answer at all): one line for each outcome, the exit status
saying which, never a trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from awooop.cli import approvals
from awooop.cli.main import main
from awooop.security.api_tokens import InvalidApiToken, mint_api_token, verify_api_token
from support.query_api import stand_in_queries

pytestmark = pytest.mark.unit

SECRET = "cli-approvals-unit-test-secret-0123456789"
RUN = "0196a5d1-ac96-774b-bcce-b302099a8057"
PENDING = "4130a76b-3361-5576-b465-f39363d0a3f9"
GRANTED = "7d1f0e52-8a4c-5b9e-a1d3-2c5e7f9b0d14"
DENIED = "a3c5e7f9-1b2d-5f4a-8c6e-0d2f4a6c8e01"
DECIDED = "b2d4f6a8-0c1e-5a3b-9d5f-1e3a5c7e9f02"
Handler = Callable[[httpx.Request], httpx.Response]
REAL_CLIENT = approvals.DecisionClient


def _approval(approval_id: str, state: str, **fields: Any) -> dict[str, Any]:
    return {
        "approval_id": approval_id,
        "run_id": RUN,
        "call_id": f"{RUN}:2",
        "tool": "restart__demo",
        "arguments": {"service": "cache", "notify": "[REDACTED:email]"},
        "argument_hash": "ab" * 32,
        "action_hash": "cd" * 32,
        "scope": "write",
        "mode": "suggest",
        "policy_revision": "demo-policy@2:0123456789ab",
        "approvers": ["alice", "bob", "carol"],
        "approvals_required": 2,
        "rejections_required": 2,
        "requester": "acme:telegram:42",
        "expires_at": "2026-05-04T10:10:01.000000Z",
        "requested_at": "2026-05-04T10:00:01.123456Z",
        "approvals": 0,
        "rejections": 0,
        "votes": [],
        "state": state,
        "outcome_code": None,
        "outcome_reason": None,
        "decided_by": None,
        "decided_at": None,
        "decided_event_id": None,
        "token_id": None,
        "token_expires_at": None,
        **fields,
    }


LISTED = [
    _approval(PENDING, "pending", approvals=1),
    _approval(GRANTED, "granted", approvals=2, decided_by=["alice", "bob"], token_id="jti-1"),
    _approval(
        DENIED,
        "denied",
        rejections=2,
        decided_by=["carol", "alice"],
        outcome_code="E-APPROVAL-REJECTED",
        outcome_reason="rejected by\ncarol, alice",
    ),
]


def test_the_listing_asks_with_its_filters_and_prints_one_line_per_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = stand_in_queries(monkeypatch, lambda _r: httpx.Response(200, json={"items": LISTED}))
    argv = ["approvals", "list", "--project", "acme", "--state", "pending", "--run", RUN]
    assert main(argv) == 0
    (request,) = seen
    assert request.url.path == "/v1/approvals"
    assert dict(request.url.params) == {"limit": "20", "state": "pending", "run_id": RUN}
    out = capsys.readouterr().out.splitlines()
    assert out[0] == approvals.HEADER
    pending, granted, denied = out[1:]
    assert pending.startswith("2026-05-04T10:00:01.123  pending  restart__demo")
    assert "    1/2     0/2  " in pending
    assert pending.endswith(f"{PENDING}  approvers alice, bob, carol; expires 2026-05-04T10:10:01")
    assert granted.endswith(f"{GRANTED}  granted by alice, bob")
    assert denied.endswith(
        f"{DENIED}  E-APPROVAL-REJECTED: rejected by carol, alice (rejected by carol, alice)"
    )
    assert "REDACTED" not in "\n".join(out)  # arguments are not printed
    assert len(out) == 4


def test_an_empty_listing_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in_queries(monkeypatch, lambda _r: httpx.Response(200, json={"items": []}))
    assert main(["approvals", "list", "--project", "acme"]) == 0
    assert capsys.readouterr().out == "no approval requests in project acme match\n"


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(403, json={"detail": "the token does not grant project 'x'"}),
        lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)),
    ],
    ids=["refused", "unreachable"],
)
def test_a_listing_refused_or_unanswered_is_one_line_on_stderr(
    answer: Handler, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in_queries(monkeypatch, answer)
    assert main(["approvals", "list", "--state", "granted"]) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("awooop: error: ")
    assert "Traceback" not in captured.err
    assert "HTTP 403: the token does not grant" in err[0] or "unreachable (ConnectError)" in err[0]


class DecisionApi:
    """A stand-in of `POST /v1/approvals/{id}/decisions`, answering as the approval
    service does: the voter is the token's subject; a vote on a request of no project the
    token names is unknown."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.votes: list[tuple[str, str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.split("/")
        if (
            request.method != "POST"
            or parts[1:3] != ["v1", "approvals"]
            or parts[4:] != ["decisions"]
        ):
            return httpx.Response(404, json={"detail": "Not Found"})
        approval_id = parts[3]
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = verify_api_token(bearer, SECRET)
        except InvalidApiToken as refused:
            reason = f"invalid bearer token: {refused.reason}"
            return httpx.Response(401, json={"code": "E-API-UNAUTHORIZED", "reason": reason})
        try:
            body = json.loads(request.content)
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or set(body) != {"decision"}
            or body["decision"]
            not in (
                "approve",
                "reject",
            )
        ):
            reason = "the request does not match its schema: /decision: Input should be 'approve'"
            errors = ["/decision: Input should be 'approve' or 'reject'"]
            return httpx.Response(
                422, json={"code": "E-API-REQUEST-INVALID", "reason": reason, "errors": errors}
            )
        if approval_id not in (PENDING, DECIDED) or "acme" not in claims.projects:
            reason = f"no approval request {approval_id}"
            return httpx.Response(404, json={"code": "E-APPROVAL-UNKNOWN", "reason": reason})
        self.votes.append((approval_id, body["decision"], claims.subject))
        answer = {"approval_id": approval_id, "code": None, "reason": None}
        if approval_id == DECIDED:
            refused = {
                "state": "granted",
                "counted": False,
                "code": "E-APPROVAL-DECIDED",
                "reason": "the request was already granted",
            }
            return httpx.Response(409, json=answer | refused)
        if claims.subject == "user:mallory":
            refused = {
                "state": "pending",
                "counted": False,
                "code": "E-APPROVAL-NOT-APPROVER",
                "reason": "user:mallory is not an approver of this request",
            }
            return httpx.Response(403, json=answer | refused)
        state = "granted" if body["decision"] == "approve" else "denied"
        return httpx.Response(200, json=answer | {"state": state, "counted": True})


@pytest.fixture
def decision_api(monkeypatch: pytest.MonkeyPatch) -> DecisionApi:
    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", SECRET)
    monkeypatch.setenv("AWOOOP_APPROVAL_URL", "http://approval")
    monkeypatch.delenv("AWOOOP_TOKEN", raising=False)
    api = DecisionApi()

    def client(token: str, url: str | None = None, transport: Any = None) -> Any:
        return REAL_CLIENT(token, url, httpx.MockTransport(api))

    monkeypatch.setattr(approvals, "DecisionClient", client)
    return api


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_an_approval_posts_the_decision_as_the_subject_and_says_it_counted(
    decision_api: DecisionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["approvals", "approve", PENDING, "--project", "acme", "--as", "user:alice"]
    assert _run(argv, capsys) == (
        0,
        f"approval {PENDING}: your approve vote counted; the request is granted\n",
        "",
    )
    (request,) = decision_api.requests
    assert (request.method, str(request.url)) == (
        "POST",
        f"http://approval/v1/approvals/{PENDING}/decisions",
    )
    assert json.loads(request.content) == {"decision": "approve"}
    bearer = request.headers["Authorization"].removeprefix("Bearer ")
    claims = verify_api_token(bearer, SECRET)
    assert (claims.subject, claims.projects) == ("user:alice", ("acme",))
    assert decision_api.votes == [(PENDING, "approve", "user:alice")]


def test_a_rejection_posts_reject(
    decision_api: DecisionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["approvals", "reject", PENDING, "--project", "acme", "--as", "user:bob"]
    assert _run(argv, capsys) == (
        0,
        f"approval {PENDING}: your reject vote counted; the request is denied\n",
        "",
    )
    assert decision_api.votes == [(PENDING, "reject", "user:bob")]


def test_a_given_token_is_sent_as_is(
    decision_api: DecisionApi,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = mint_api_token(SECRET, subject="user:carol", projects=["acme"], roles=["viewer"])
    assert _run(["approvals", "approve", PENDING, "--token", token], capsys)[0] == 0
    monkeypatch.setenv("AWOOOP_TOKEN", token)
    assert _run(["approvals", "reject", PENDING], capsys)[0] == 0
    sent = [r.headers["Authorization"] for r in decision_api.requests]
    assert sent == [f"Bearer {token}"] * 2
    assert [v[2] for v in decision_api.votes] == ["user:carol", "user:carol"]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["approvals", "approve", DECIDED, "--project", "acme"],
            f"approval {DECIDED}: your approve vote was not counted (E-APPROVAL-DECIDED: "
            "the request was already granted); the request is granted",
        ),
        (
            ["approvals", "approve", PENDING, "--project", "acme", "--as", "user:mallory"],
            f"approval {PENDING}: your approve vote was not counted (E-APPROVAL-NOT-APPROVER: "
            "user:mallory is not an approver of this request); the request is pending",
        ),
    ],
    ids=["decided", "not-an-approver"],
)
def test_a_refused_vote_says_why_it_did_not_count_and_exits_1(
    argv: list[str], line: str, decision_api: DecisionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv, capsys) == (1, line + "\n", "")


def test_an_unknown_request_is_one_error_line(
    decision_api: DecisionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = "00000000-0000-5000-8000-000000000000"
    assert _run(["approvals", "approve", unknown, "--project", "acme"], capsys) == (
        2,
        "",
        f"awooop: error: E-APPROVAL-UNKNOWN: no approval request {unknown}\n",
    )
    other = ["approvals", "approve", PENDING, "--project", "globex"]
    assert _run(other, capsys)[2] == (
        f"awooop: error: E-APPROVAL-UNKNOWN: no approval request {PENDING}\n"
    )
    assert decision_api.votes == []


def test_a_refused_token_is_one_error_line(
    decision_api: DecisionApi,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forged = mint_api_token("x" * 40, subject="user:alice", projects=["acme"], roles=["viewer"])
    assert _run(["approvals", "approve", PENDING, "--token", forged], capsys) == (
        2,
        "",
        "awooop: error: E-API-UNAUTHORIZED: invalid bearer token: signature does not verify\n",
    )
    monkeypatch.delenv("AWOOOP_API_JWT_SECRET")
    monkeypatch.setenv("AWOOOP_HOME", "/nonexistent-awooop-home")
    code, out, err = _run(["approvals", "approve", PENDING], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("awooop: error: no token: pass --token or set AWOOOP_TOKEN")
    assert len(err.splitlines()) == 1
    assert decision_api.votes == []


def test_a_bad_body_a_broken_proxy_and_no_answer_are_one_error_line_each(
    decision_api: DecisionApi,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answering(handler: Handler) -> None:
        def client(token: str, url: str | None = None, transport: Any = None) -> Any:
            return REAL_CLIENT(token, "http://approval", httpx.MockTransport(handler))

        monkeypatch.setattr(approvals, "DecisionClient", client)

    def bad_body(request: httpx.Request) -> httpx.Response:
        body = {"code": "E-API-REQUEST-INVALID", "reason": "/decision: Input should be 'approve'"}
        return httpx.Response(422, json=body)

    answering(bad_body)
    assert _run(["approvals", "reject", PENDING], capsys) == (
        2,
        "",
        "awooop: error: E-API-REQUEST-INVALID: /decision: Input should be 'approve'\n",
    )
    answering(lambda _r: httpx.Response(502, text="<html>\n bad gateway\n</html>"))
    code, out, err = _run(["approvals", "reject", PENDING], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("awooop: error: HTTP 502 from http://approval/v1/approvals/")
    assert len(err.splitlines()) == 1

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    answering(down)
    assert _run(["approvals", "approve", PENDING], capsys) == (
        2,
        "",
        "awooop: error: the approval API at http://approval is unreachable (ConnectError); "
        "is the platform running (`awooop up`)?\n",
    )


def test_no_approval_api_address_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", SECRET)
    monkeypatch.delenv("AWOOOP_APPROVAL_URL", raising=False)
    monkeypatch.setenv("AWOOOP_HOME", str(tmp_path))
    assert _run(["approvals", "approve", PENDING], capsys) == (
        2,
        "",
        "awooop: error: no approval API address: set AWOOOP_APPROVAL_URL or start the "
        "platform (`awooop up`)\n",
    )

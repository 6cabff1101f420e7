"""`awooop approvals list | approve | reject`: a project's approval requests from the query
API (`GET /v1/approvals`), and one person's vote on a request through the approval
service's decision API (`POST /v1/approvals/<id>/decisions`).

A listing is one line per request under a header (arguments are never printed: the API
shows only their redacted display form, and a table line has no room for it). A vote
prints one line saying what it did: counted (exit 0), or not counted and why (exit 1).
A refusal of the API (a token, an unknown request, a bad body), an unreachable API or a
missing token is one line on stderr and exit status 2, never a trace.

The voter is the bearer token's subject: `--token`, else `AWOOOP_TOKEN`, else a
10-minute development token for `--as` (default `operator:<login name>`) naming
`--project`, signed with `AWOOOP_API_JWT_SECRET` or `<home>/api-jwt.secret`. The
policy decides whether that subject is one of the request's approvers. The verbs'
options are declared in `awooop.cli.verbs.approvals`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from awooop.cli import queries
from awooop.cli.contract_client import approval_url, bearer_token, refusal_line

VOTER = "approver"
"""The role of a development token that votes (the policy, not the role, decides who
counts)."""
EXIT_NOT_COUNTED = 1
EXIT_ERROR = 2
REASON_CHARS = 60
HEADER = (
    f"{'REQUESTED':<23}  {'STATE':<8} {'TOOL':<24} {'APPROVE':>7} {'REJECT':>7}  "
    f"{'APPROVAL':<36}  DETAIL"
)


class ApprovalCommandError(RuntimeError):
    """A vote that was not sent or not answered; the message says why, in one line."""


def _votes(done: int, needed: int | None) -> str:
    return f"{done}/{needed}" if needed is not None else str(done)


def _cut(text: str | None) -> str:
    said = " ".join((text or "").split())
    return said if len(said) <= REASON_CHARS else said[: REASON_CHARS - 1] + "…"


def _detail(approval: dict[str, Any]) -> str:
    state = approval["state"]
    if state == "granted":
        return f"granted by {', '.join(approval['decided_by'] or [])}"
    if state == "denied":
        by = ", ".join(approval["decided_by"] or [])
        said = f"{approval['outcome_code']}: {_cut(approval['outcome_reason'])}"
        return f"{said} (rejected by {by})" if by else said
    expires = (approval["expires_at"] or "")[:19]
    return f"approvers {', '.join(approval['approvers'] or [])}; expires {expires}"


def format_approval(approval: dict[str, Any]) -> str:
    """One request on one line: when, state, tool, votes of each side, its id, what next."""
    at = (approval["requested_at"] or "")[:23]
    approve = _votes(approval["approvals"], approval["approvals_required"])
    reject = _votes(approval["rejections"], approval["rejections_required"])
    return (
        f"{at:<23}  {approval['state']:<8} {approval['tool'] or '?':<24} {approve:>7} "
        f"{reject:>7}  {approval['approval_id']:<36}  {_detail(approval)}"
    )


def list_approvals(args: argparse.Namespace) -> int:
    chosen = {"state": args.state, "run_id": args.run}
    params: dict[str, Any] = {"limit": args.limit} | {
        k: v for k, v in chosen.items() if v is not None
    }
    client = queries.QueryClient(args.project)
    try:
        found = client.items("/v1/approvals", params)
    except queries.QueryError as error:
        print(f"awooop: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        client.close()
    if not found:
        print(f"no approval requests in project {args.project} match")
        return 0
    print(HEADER)
    for approval in found:
        print(format_approval(approval))
    return 0


class DecisionClient:
    """Posts votes to the approval API with one bearer token."""

    def __init__(
        self, token: str, url: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url or approval_url(ApprovalCommandError)
        self._client = httpx.Client(
            base_url=self.url,
            timeout=15.0,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )

    def vote(self, approval_id: str, decision: str) -> dict[str, Any]:
        """POST the vote; the decision API's answer (a counted vote, or a refused one with
        its code and reason), or `ApprovalCommandError` saying why there is none."""
        try:
            response = self._client.post(
                f"/v1/approvals/{approval_id}/decisions", json={"decision": decision}
            )
        except httpx.TransportError as error:
            raise ApprovalCommandError(
                f"the approval API at {self.url} is unreachable ({type(error).__name__}); "
                "is the platform running (`awooop up`)?"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        # A refused vote is answered with its own body (403 or 409, `counted: false`); a
        # refused token or request with `{code, reason}` only.
        if isinstance(answer, dict) and isinstance(answer.get("counted"), bool):
            return answer
        raise ApprovalCommandError(refusal_line(response))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DecisionClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def describe_decision(decision: str, answer: dict[str, Any]) -> str:
    """One line saying what a vote did, from the decision API's answer."""
    head = f"approval {answer.get('approval_id')}"
    state = answer.get("state") or "unknown"
    if answer["counted"]:
        return f"{head}: your {decision} vote counted; the request is {state}"
    why = " ".join(f"{answer.get('code') or ''}: {answer.get('reason') or ''}".split())
    return f"{head}: your {decision} vote was not counted ({why}); the request is {state}"


def decide(args: argparse.Namespace) -> int:
    try:
        token = bearer_token(
            args.project, args.token, args.subject, role=VOTER, refusal=ApprovalCommandError
        )
        with DecisionClient(token) as client:
            answer = client.vote(args.approval_id, args.decision)
    except ApprovalCommandError as error:
        print(f"awooop: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(describe_decision(args.decision, answer))
    return 0 if answer["counted"] else EXIT_NOT_COUNTED

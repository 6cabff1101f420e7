"""`awooop budget show` against a stand-in query API: one request per chosen project, the
answer as a table, every refusal and an unreachable API as one line."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from awooop.cli.budget_queries import BudgetQueryError, fetch_budgets, format_budget
from awooop.cli.main import build_parser, describe

pytestmark = pytest.mark.unit

API = "http://query-api"


def _entry(project: str, *, killed: bool = False) -> dict[str, Any]:
    return {
        "project_id": project,
        "day": "2026-03-01",
        "month": "2026-03",
        "kill_switch": {
            "killed": killed,
            "changed_at": "2026-03-01T10:00:00Z" if killed else None,
            "event_type": "budget.tenant_killed" if killed else None,
            "code": "E-BUDGET-KILLED" if killed else None,
            "reason": "spent" if killed else None,
            "actor": "service:runtime" if killed else None,
            "budget_revision": None,
        },
        "usage": [
            {
                "agent_id": "demo",
                "period": "daily",
                "period_key": "2026-03-01",
                "steps": 2,
                "tokens_in": 720,
                "tokens_out": 100,
                "tokens": 820,
                "cost": "0.000168",
            }
        ],
        "tripped": [],
        "budgets": [
            {
                "contract_id": "budget",
                "revision": 2,
                "signature_check": "valid",
                "currency": "USD",
                "kill_switch_at": "0.95",
                "limits": [
                    {
                        "scope": "agent",
                        "agent_id": "demo",
                        "period": "daily",
                        "max_tokens": None,
                        "max_cost": "10.5",
                    }
                ],
            }
        ],
    }


def test_one_request_per_chosen_project_with_the_token_and_day() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        project = request.url.params.get("project_id", "acme")
        return httpx.Response(200, json={"projects": [_entry(project)]})

    transport = httpx.MockTransport(answer)
    found = fetch_budgets("tok", ["acme", "globex"], "2026-03-01", API, transport)
    assert [e["project_id"] for e in found] == ["acme", "globex"]
    assert [dict(r.url.params) for r in seen] == [
        {"project_id": "acme", "day": "2026-03-01"},
        {"project_id": "globex", "day": "2026-03-01"},
    ]
    assert {r.headers["authorization"] for r in seen} == {"Bearer tok"}
    fetch_budgets("tok", None, None, API, transport)
    assert dict(seen[-1].url.params) == {}  # every project the token names


def test_a_refusal_is_one_line_with_the_api_reason() -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "the token does not grant project 'globex'"})

    with pytest.raises(BudgetQueryError) as refused:
        fetch_budgets("tok", ["globex"], None, API, httpx.MockTransport(refuse))
    line = describe(refused.value)
    assert line == "the query API refused (HTTP 403): the token does not grant project 'globex'"

    def invalid(_request: httpx.Request) -> httpx.Response:
        detail = [{"loc": ["query", "day"], "msg": "Input should be a valid date"}]
        return httpx.Response(422, json={"detail": detail})

    with pytest.raises(BudgetQueryError, match="day: Input should be a valid date"):
        fetch_budgets("tok", ["acme"], "soon", API, httpx.MockTransport(invalid))


def test_an_unreachable_api_says_where_and_what_to_do() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(BudgetQueryError) as failed:
        fetch_budgets("tok", ["acme"], None, API, httpx.MockTransport(down))
    assert "unreachable (ConnectError)" in str(failed.value)
    assert "`awooop up`" in str(failed.value)


def test_the_table_shows_the_switch_the_limits_and_the_usage() -> None:
    lines = format_budget(_entry("acme", killed=True))
    assert lines[0].startswith("project acme  day 2026-03-01  kill switch KILLED")
    assert "E-BUDGET-KILLED: spent" in lines[0]
    assert "budget budget@2 (USD, kill switch at 0.95, signature valid)" in lines[1]
    assert lines[2].split() == ["limit", "agent", "demo", "daily", "tokens", "-", "cost", "10.5"]
    assert lines[3].split() == [
        "PERIOD",
        "KEY",
        "AGENT",
        "STEPS",
        "TOKENS_IN",
        "TOKENS_OUT",
        "COST",
    ]
    assert lines[4].split() == ["daily", "2026-03-01", "demo", "2", "720", "100", "0.000168"]
    quiet = format_budget({**_entry("acme"), "usage": [], "budgets": []})
    assert "kill switch off" in quiet[0]
    assert "no active budget" in quiet[1]
    assert "no steps settled" in quiet[-1]


def test_show_joins_the_budget_verb() -> None:
    args = build_parser().parse_args(["budget", "show", "--project", "a", "--project", "b"])
    assert (args.project, args.day, args.token) == (["a", "b"], None, None)

"""`awooop budget show`: each project's kill switch, usage and limits from the query API
(its arguments: `awooop.cli.verbs.budget_queries`).

The token is `--token`, else `AWOOOP_TOKEN`, else a development token naming the
`--project`s (default: the demo project); every refusal and an unreachable API are one
line (`BudgetQueryError`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.platform_addresses import recorded_api_url
from awooop.cli.queries import dev_token
from awooop.infra.settings import state_dir


class BudgetQueryError(RuntimeError):
    """A budget query that got no answer; the message says why, in one line."""


def fetch_budgets(
    token: str,
    projects: list[str] | None,
    day: str | None = None,
    api_url: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[dict[str, Any]]:
    """The `projects` entries of `GET /v1/budgets`: one request per chosen project, or one
    for every project the token names when none is chosen."""
    url = api_url or recorded_api_url(state_dir())
    headers = {"Authorization": f"Bearer {token}"}
    found: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=10.0, transport=transport) as http:
        chosen: list[str | None] = [*projects] if projects else [None]
        for project in chosen:
            params = {k: v for k, v in (("project_id", project), ("day", day)) if v}
            try:
                response = http.get("/v1/budgets", params=params)
            except httpx.TransportError as error:
                raise BudgetQueryError(
                    f"the query API at {url} is unreachable ({type(error).__name__}); "
                    "is the platform running (`awooop up`)?"
                ) from None
            if not response.is_success:
                raise BudgetQueryError(_refusal(response))
            found += response.json()["projects"]
    return found


def _refusal(response: httpx.Response) -> str:
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = " ".join(response.text.split())[:200] or response.reason_phrase
    if isinstance(detail, list):  # a 422 lists what was wrong with which parameter
        detail = "; ".join(f"{d.get('loc', ['?'])[-1]}: {d.get('msg')}" for d in detail)
    return f"the query API refused (HTTP {response.status_code}): {detail}"


def format_budget(entry: dict[str, Any]) -> list[str]:
    """One project's budget as a few lines of text and a usage table."""
    switch = entry["kill_switch"]
    if switch["killed"]:
        state = f"KILLED {switch['changed_at']} ({switch['code']}: {switch['reason']})"
    elif switch["changed_at"] is not None:
        state = f"off (reset {switch['changed_at']} by {switch['actor']}: {switch['reason']})"
    else:
        state = "off"
    lines = [f"project {entry['project_id']}  day {entry['day']}  kill switch {state}"]
    if not entry["budgets"]:
        lines.append("  no active budget: runs are unbudgeted")
    for budget in entry["budgets"]:
        lines.append(
            f"  budget {budget['contract_id']}@{budget['revision']} "
            f"({budget['currency']}, kill switch at {budget['kill_switch_at']}, "
            f"signature {budget['signature_check'] or 'unchecked'})"
        )
        for limit in budget["limits"]:
            scope = f"{limit['scope']} {limit['agent_id'] or ''}".strip()
            lines.append(
                f"    limit {scope:<24} {limit['period']:<8} "
                f"tokens {limit['max_tokens'] or '-'}  cost {limit['max_cost'] or '-'}"
            )
    lines.append(
        f"  {'PERIOD':<8} {'KEY':<10} {'AGENT':<24} {'STEPS':>6} {'TOKENS_IN':>10} "
        f"{'TOKENS_OUT':>10} {'COST':>12}"
    )
    for use in entry["usage"]:
        lines.append(
            f"  {use['period']:<8} {use['period_key']:<10} {use['agent_id'] or '?':<24} "
            f"{use['steps']:>6} {use['tokens_in']:>10} {use['tokens_out']:>10} {use['cost']:>12}"
        )
    if not entry["usage"]:
        lines.append("  (no steps settled this day or month)")
    for trip in entry["tripped"]:
        lines.append(f"  tripped {trip['scope_key']} at {trip['occurred_at']}")
    return lines


def show_budgets(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("AWOOOP_TOKEN")
    projects = args.project
    if token is None:
        projects = projects or [DEFAULT_PROJECT]
        token = dev_token(projects)
    for entry in fetch_budgets(token, projects, args.day):
        print("\n".join(format_budget(entry)))
    return 0

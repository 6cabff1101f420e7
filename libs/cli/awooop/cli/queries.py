"""`awooop token`, `awooop runs list | show` and `awooop channel-events list`: the query
API from the command line (their arguments: `awooop.cli.verbs.queries`).

`QueryClient` also reads contracts for `awooop contracts list | show | diff`; its
contract methods turn every refusal into a one-line `ContractCommandError`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from awooop.cli.contract_client import ContractCommandError
from awooop.cli.demo_tenant import DEFAULT_PROJECT
from awooop.cli.platform_addresses import recorded_api_url
from awooop.infra.settings import Settings, SettingsError, state_dir
from awooop.security.api_tokens import mint_api_token


def dev_token(projects: list[str], roles: list[str] | None = None, ttl: int = 3600) -> str:
    secret = Settings.from_env().api_jwt_secret
    if not secret:
        raise SettingsError(
            "no API signing key: set AWOOOP_API_JWT_SECRET or start the stack (`awooop dev up`)"
        )
    return mint_api_token(
        secret, subject="dev", projects=projects, roles=roles or ["viewer"], ttl_seconds=ttl
    )


def print_token(args: argparse.Namespace) -> int:
    print(dev_token(args.project or [DEFAULT_PROJECT], args.role, args.ttl))
    return 0


class QueryClient:
    """A small client of the query API for one project."""

    def __init__(self, project: str, api_url: str | None = None) -> None:
        self.project = project
        self._client = httpx.Client(
            base_url=api_url or recorded_api_url(state_dir()),
            headers={"Authorization": f"Bearer {dev_token([project])}"},
            timeout=10.0,
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        response = self._client.get("/v1/runs", params={"limit": limit})
        response.raise_for_status()
        return list(response.json()["runs"])

    def run(self, run_id: str) -> dict[str, Any] | None:
        response = self._client.get(f"/v1/runs/{run_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def channel_events(
        self,
        outcome: str | None = None,
        channel: str | None = None,
        prefix: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The newest channel events; `QueryError` with the API's reason when refused."""
        params: dict[str, Any] = {"limit": limit}
        chosen = (
            ("outcome", outcome),
            ("channel_type", channel),
            ("provider_event_id_prefix", prefix),
        )
        params |= {k: v for k, v in chosen if v is not None}
        return self.items("/v1/channel-events", params)

    def items(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The `items` of a listing; `QueryError` with the API's reason when refused."""
        try:
            response = self._client.get(path, params=params)
        except httpx.TransportError as error:
            raise QueryError(
                f"the query API at {self._client.base_url} is unreachable "
                f"({type(error).__name__}); is the platform running (`awooop up`)?"
            ) from None
        if not response.is_success:
            raise QueryError(_refusal(response))
        return list(response.json()["items"])

    def contracts(
        self, family: str | None = None, lifecycle: str | None = None, page: int = 200
    ) -> list[dict[str, Any]]:
        """Every contract of the project (all pages), in contract id order."""
        params: dict[str, Any] = {"limit": page}
        params |= {k: v for k, v in (("family", family), ("lifecycle", lifecycle)) if v}
        found: list[dict[str, Any]] = []
        while True:
            answer = self._contract_answer("/v1/contracts", params)
            found += answer["contracts"]
            if answer["next"] is None:
                return found
            params["cursor"] = answer["next"]

    def contract(self, contract_id: str) -> dict[str, Any]:
        """One contract with its revisions; `ContractCommandError` when there is none."""
        return self._contract_answer(f"/v1/contracts/{contract_id}", {})

    def _contract_answer(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.get(path, params=params)
        except httpx.TransportError as error:
            raise ContractCommandError(
                f"the query API at {self._client.base_url} is unreachable "
                f"({type(error).__name__}); is the platform running (`awooop up`)?"
            ) from None
        if response.is_success:
            answer: dict[str, Any] = response.json()
            return answer
        raise ContractCommandError(_refusal(response))

    def close(self) -> None:
        self._client.close()


class QueryError(RuntimeError):
    """A query the API refused or could not answer; the message says why, in one line."""


def _refusal(response: httpx.Response) -> str:
    """The API's `detail` in one line (a 422 lists what was wrong with which parameter)."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = " ".join(response.text.split())[:200] or response.reason_phrase
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
        )
    return f"HTTP {response.status_code}: {detail}"


def list_runs(args: argparse.Namespace) -> int:
    client = QueryClient(args.project)
    try:
        for run in client.runs(args.limit):
            print(f"{run['run_id']}  {run['state'] or '?':<14} {run['started_at'] or ''}")
    finally:
        client.close()
    return 0


def format_timeline(detail: dict[str, Any]) -> list[str]:
    run = detail["run"]
    lines = [
        f"run {run['run_id']}  {run['state']}  agent {run['agent_id']}  mode {run['mode']}",
        f"  message: {run['trigger_text']!r}",
    ]
    if run.get("revision"):
        lines.insert(1, f"  agent revision {run['revision']}")
    for event in detail["timeline"]:
        summary = event["summary"]
        said = summary.get("text") or ", ".join(f"{k}={v}" for k, v in summary.items())
        lines.append(f"  {event['occurred_at'][11:23]}  {event['event_type']:<28} {said}")
    suppressed = " (suppressed: shadow mode)" if run["suppressed"] else ""
    lines.append(f"  reply{suppressed}: {run['reply']!r}")
    return lines


def show_run(args: argparse.Namespace) -> int:
    client = QueryClient(args.project)
    try:
        detail = client.run(args.run_id)
    finally:
        client.close()
    if detail is None:
        print(f"no run {args.run_id} in project {args.project}")
        return 4
    print("\n".join(format_timeline(detail)))
    return 0


_OUTCOME_DETAIL = {
    "run_started": "run {run_id}",
    "busy": "refused: run {busy_with} was active",
    "queued": "queued behind run {queued_on}",
    "duplicate_of": "repeats {duplicate_of}",
    "rejected": "{code}: {reason}",
    "ignored": "{reason}",
    "button_pressed": "button {display_text!r}",
    "received": "no run known yet",
}


def format_channel_event(event: dict[str, Any]) -> str:
    """One channel event on one line: when, outcome, channel, provider id, what happened."""
    detail = " ".join(_OUTCOME_DETAIL[event["outcome"]].format(**event).split())
    said = event["display_text"] if event["kind"] == "message" else None
    text = f"  {' '.join(said.split())[:60]!r}" if said else ""
    return (
        f"{event['occurred_at'][:23]}  {event['outcome']:<14} {event['channel_type'] or '?':<9}"
        f"{event['provider_event_id'] or '-'}  {detail}{text}"
    )


def list_channel_events(args: argparse.Namespace) -> int:
    client = QueryClient(args.project)
    try:
        events = client.channel_events(args.outcome, args.channel, args.prefix, args.limit)
    except QueryError as error:
        print(f"awooop: error: {error}", file=sys.stderr)
        return 2
    finally:
        client.close()
    for event in events:
        print(format_channel_event(event))
    if not events:
        print(f"no channel events in project {args.project} match")
    return 0

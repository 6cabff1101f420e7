"""`awooop mcp-calls list` against a stand-in query API: the filters become query parameters,
each call is one line of a table under a header saying what became of it, a refusal or an
unreachable API is one line on stderr."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from awooop.cli import mcp_calls
from awooop.cli.main import build_parser, main
from awooop.projector.domain.mcp_calls import MCP_CALL_STATUSES
from support.query_api import stand_in_queries

pytestmark = pytest.mark.unit

RUN = "0196a5d1-ac96-774b-bcce-b302099a8057"


def _call(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "call_id": f"{RUN}:2",
        "run_id": RUN,
        "tool": "status__demo",
        "status": status,
        "gate": None,
        "code": None,
        "reason": None,
        "retry_after": None,
        "would_need": None,
        "argument_hash": "ab" * 32,
        "arguments": {"service": "checkout", "notify": "[REDACTED:email]"},
        "redactions": {"email": 1},
        "latency_ms": None,
        "transient": None,
        "action_hash": None,
        "revisions": ["status__demo@1:0123456789ab"],
        "requested_at": "2026-05-04T10:00:01.123456Z",
        "decided_at": None,
        "decided_event_id": None,
        **fields,
    }


EXAMPLES = {
    "requested": _call("requested", arguments=None),
    "awaiting_approval": _call("awaiting_approval", reason="restarts need an approval"),
    "succeeded": _call("succeeded", latency_ms=42.25),
    "blocked": _call(
        "blocked",
        gate=4,
        code="E-MCP-GATE-007",
        reason="rate\nlimited",
        retry_after=1.5,
    ),
    "failed": _call(
        "failed",
        code="E-MCP-CALL-FAILED",
        reason="ConnectionRefusedError " + "x" * 200,
        transient=True,
        latency_ms=3.0,
    ),
}


def test_each_status_is_one_line_naming_what_happened() -> None:
    assert set(EXAMPLES) == set(MCP_CALL_STATUSES)
    lines = {status: mcp_calls.format_mcp_call(c) for status, c in EXAMPLES.items()}
    assert all("\n" not in line for line in lines.values())
    assert lines["succeeded"].startswith("2026-05-04T10:00:01.123  succeeded         status__demo")
    assert "42 ms" in lines["succeeded"]
    assert f"{RUN}:2" in lines["succeeded"]
    blocked = lines["blocked"]
    assert " 4    E-MCP-GATE-007 " in blocked
    assert blocked.endswith("rate limited (retry after 1.5 s)")
    assert "3.0 ms" in lines["failed"]
    assert lines["failed"].endswith("… (transient)")
    assert lines["awaiting_approval"].endswith("restarts need an approval")
    for line in lines.values():
        assert "checkout" not in line  # arguments are never printed
        assert "REDACTED" not in line
    no_tool = mcp_calls.format_mcp_call(_call("succeeded", tool=None, requested_at=None))
    assert no_tool.startswith(" " * 23 + "  succeeded         ?")


def test_the_filters_become_query_parameters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = [EXAMPLES["blocked"], EXAMPLES["succeeded"]]
    seen = stand_in_queries(monkeypatch, lambda _r: httpx.Response(200, json={"items": calls}))
    argv = ["mcp-calls", "list", "--project", "acme", "--run", RUN, "--status", "blocked"]
    assert main([*argv, "--gate", "4", "--tool", "status__demo", "--limit", "5"]) == 0
    assert seen[0].url.path == "/v1/mcp-calls"
    assert dict(seen[0].url.params) == {
        "limit": "5",
        "run_id": RUN,
        "status": "blocked",
        "gate": "4",
        "tool": "status__demo",
    }
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == mcp_calls.HEADER
    assert len(printed) == 3
    assert "blocked" in printed[1]


def test_no_match_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in_queries(monkeypatch, lambda _r: httpx.Response(200, json={"items": []}))
    assert main(["mcp-calls", "list", "--project", "acme"]) == 0
    assert capsys.readouterr().out == "no tool calls in project acme match\n"


def test_a_refusal_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    detail = [{"loc": ["query", "run_id"], "msg": "Input should be a valid UUID"}]
    stand_in_queries(monkeypatch, lambda _r: httpx.Response(422, json={"detail": detail}))
    assert main(["mcp-calls", "list", "--run", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == "awooop: error: HTTP 422: run_id: Input should be a valid UUID\n"


@pytest.mark.parametrize(
    "wrong", [["--status", "lost"], ["--gate", "6"], ["--gate", "one"], ["--limit", "x"]]
)
def test_wrong_filters_are_refused_by_the_parser(wrong: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["mcp-calls", "list", *wrong])

"""The demo MCP server's operations tools answer what their descriptions promise, the
same on every machine: a diagnosis, counted restarts, a prune fixed by its arguments, a
volume wiped once, a payload echoed whole, and a log long enough to be truncated. The
diagnosis tools the contracts already pin keep answering as before."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from awooop.mcp_gateway.demo_server import server

pytestmark = pytest.mark.unit


def _unique(prefix: str) -> str:
    """The server's counts live for the whole test process: each test names its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _call(tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(server) as client:
        return await client.call_tool(tool, arguments)


def _text(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


async def test_the_server_lists_the_diagnosis_tools_then_the_operations_tools() -> None:
    async with Client(server) as client:
        listed = await client.list_tools()
    assert [tool.name for tool in listed.tools] == [
        "status",
        "served",
        "uptime",
        "recent_errors",
        "disk_usage",
        "dependencies",
        "diagnose",
        "restart_service",
        "prune_cache",
        "wipe_volume",
        "echo",
        "tail_log",
    ]
    hints = {tool.name: tool.annotations for tool in listed.tools if tool.annotations}
    assert hints["wipe_volume"].destructive_hint is True
    assert hints["diagnose"].read_only_hint is True
    assert hints["restart_service"].read_only_hint is False


async def test_diagnose_is_fixed_by_the_service_and_suggests_an_action() -> None:
    first = await _call("diagnose", {"service": "checkout"})
    again = await _call("diagnose", {"service": "checkout"})
    assert first.is_error is False
    assert first.structured_content == again.structured_content
    diagnosis = first.structured_content
    assert diagnosis is not None
    assert diagnosis["service"] == "checkout"
    assert diagnosis["verdict"] in {"healthy", "degraded", "failing"}
    assert diagnosis["suggested_action"] in {
        "none",
        "restart_service",
        "prune_cache",
        "wipe_volume",
    }
    assert (diagnosis["verdict"] == "healthy") == (diagnosis["error_rate_percent"] == 0)
    verdicts = set()
    for number in range(40):
        answer = await _call("diagnose", {"service": f"svc-{number}"})
        assert answer.structured_content is not None
        verdicts.add(answer.structured_content["verdict"])
    assert verdicts == {"healthy", "degraded", "failing"}


async def test_restart_service_counts_the_restarts_of_each_service() -> None:
    service, other = _unique("api"), _unique("web")
    answers = [await _call("restart_service", {"service": service}) for _ in range(3)]
    assert [answer.structured_content for answer in answers] == [
        {"service": service, "restarts": 1},
        {"service": service, "restarts": 2},
        {"service": service, "restarts": 3},
    ]
    assert (await _call("restart_service", {"service": other})).structured_content == {
        "service": other,
        "restarts": 1,
    }


async def test_prune_cache_answers_from_its_arguments_and_prunes_less_of_younger_entries() -> None:
    hour = await _call("prune_cache", {"cache": "sessions", "older_than_minutes": 60})
    again = await _call("prune_cache", {"cache": "sessions", "older_than_minutes": 60})
    week = await _call("prune_cache", {"cache": "sessions", "older_than_minutes": 10_080})
    assert hour.structured_content == again.structured_content
    assert hour.structured_content is not None
    assert week.structured_content is not None
    assert hour.structured_content["cache"] == "sessions"
    assert hour.structured_content["older_than_minutes"] == 60
    total = hour.structured_content["pruned_entries"] + hour.structured_content["remaining_entries"]
    assert total == (
        week.structured_content["pruned_entries"] + week.structured_content["remaining_entries"]
    )
    assert week.structured_content["pruned_entries"] < hour.structured_content["pruned_entries"]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("prune_cache", {"cache": "sessions", "older_than_minutes": 0}),
        ("prune_cache", {"cache": "sessions"}),
        ("tail_log", {"service": "checkout", "lines": 2001}),
        ("tail_log", {"service": "checkout", "lines": 0}),
        ("restart_service", {"service": ""}),
        ("echo", {"payload": "not an object"}),
    ],
)
async def test_arguments_outside_the_input_schema_are_refused(
    tool: str, arguments: dict[str, Any]
) -> None:
    result = await _call(tool, arguments)
    assert result.is_error is True


async def test_wipe_volume_wipes_a_volume_once_and_says_it_was_simulated() -> None:
    volume = _unique("scratch")
    first = await _call("wipe_volume", {"volume": volume})
    second = await _call("wipe_volume", {"volume": volume})
    assert first.structured_content is not None
    assert first.structured_content["volume"] == volume
    assert first.structured_content["simulated"] is True
    assert first.structured_content["files_wiped"] > 0
    assert (
        first.structured_content["bytes_wiped"] >= 4_096 * first.structured_content["files_wiped"]
    )
    assert second.structured_content == {
        "volume": volume,
        "files_wiped": 0,
        "bytes_wiped": 0,
        "simulated": True,
    }


async def test_echo_returns_its_payload_whole_as_structured_content() -> None:
    payload = {"token": "sk-live-planted", "nested": {"list": [1, "two", None]}, "n": 3.5}
    result = await _call("echo", {"payload": payload})
    assert result.is_error is False
    assert result.structured_content == {"payload": payload}
    assert json.loads(_text(result)) == {"payload": payload}


async def test_tail_log_is_plain_text_of_the_lines_asked_past_16_kib_at_most() -> None:
    short = await _call("tail_log", {"service": "checkout", "lines": 3})
    default = await _call("tail_log", {"service": "checkout"})
    longest = await _call("tail_log", {"service": "checkout", "lines": 2000})
    assert short.structured_content is None
    lines = _text(short).splitlines()
    assert len(lines) == 3
    assert all(" checkout[" in line for line in lines)
    assert len(_text(default).splitlines()) == 100
    assert len(_text(longest).splitlines()) == 2000
    assert len(_text(default).encode()) < 16 * 1024 < len(_text(longest).encode())
    assert _text(longest) == _text(await _call("tail_log", {"service": "checkout", "lines": 2000}))


async def test_the_diagnosis_tools_answer_as_before() -> None:
    service = _unique("svc")
    assert (await _call("status", {"service": service})).structured_content == {
        "service": service,
        "status": "healthy",
        "checks": 3,
    }
    assert (await _call("served", {"service": service})).structured_content == {
        "service": service,
        "status_calls": 1,
    }
    dependencies = await _call("dependencies", {"service": "checkout"})
    assert dependencies.structured_content == {
        "service": "checkout",
        "dependencies": ["billing", "inventory", "postgres", "redis"],
    }

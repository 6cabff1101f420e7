"""The demo MCP server fails the next N calls of a tool when its control file says so:
each failed call is an error result with the given text, is journaled as served, and
never runs the tool; the count is kept in the file, so it holds across every server
reading it, and calls with other arguments or of other tools run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from awooop.mcp_gateway.demo_control import CONTROL_ENV
from awooop.mcp_gateway.demo_server import overrides, server
from awooop.mcp_gateway.demo_sessions import JOURNAL_ENV
from support.demo_mcp import (
    calls,
    fail_next_calls,
    failures_left,
    poison_description,
    read_journal,
)

pytestmark = pytest.mark.unit

UNAVAILABLE = "503 service unavailable"


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "control.json"
    monkeypatch.setenv(CONTROL_ENV, str(path))
    monkeypatch.setenv(JOURNAL_ENV, str(tmp_path / "journal.jsonl"))
    yield path
    monkeypatch.delenv(CONTROL_ENV, raising=False)
    overrides.refresh()  # the next test starts from the server's own descriptions


def _text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def _restarts(client: Client, service: str) -> int:
    result = await client.call_tool("restart_service", {"service": service})
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    restarts: int = result.structured_content["restarts"]
    return restarts


async def test_the_next_calls_fail_with_the_message_then_the_tool_runs(control: Path) -> None:
    fail_next_calls(control, "restart_service", UNAVAILABLE, count=2)
    async with Client(server) as client:
        service = "failures-a"
        first = await client.call_tool("restart_service", {"service": service})
        second = await client.call_tool("restart_service", {"service": service})
        restarts = await _restarts(client, service)
    assert (first.is_error, _text(first)) == (True, UNAVAILABLE)
    assert (second.is_error, _text(second)) == (True, UNAVAILABLE)
    assert restarts == 1  # the failed calls never ran the tool
    served = calls(read_journal(control.with_name("journal.jsonl")), "restart_service")
    assert len(served) == 3
    assert [rule["remaining"] for rule in failures_left(control)] == [0]


async def test_a_rule_fails_only_the_calls_whose_arguments_it_names(control: Path) -> None:
    fail_next_calls(control, "restart_service", "503: not found", arguments={"service": "b-hit"})
    async with Client(server) as client:
        other = await _restarts(client, "failures-b-other")
        status = await client.call_tool("status", {"service": "b-hit"})
        hit = await client.call_tool("restart_service", {"service": "b-hit"})
        again = await _restarts(client, "b-hit")
    assert other == 1
    assert not status.is_error
    assert (hit.is_error, _text(hit)) == (True, "503: not found")
    assert again == 1


async def test_descriptions_and_failures_share_the_file(control: Path) -> None:
    poison_description(control, "status", "Poisoned.")
    fail_next_calls(control, "diagnose", UNAVAILABLE)
    poison_description(control, "diagnose", "Poisoned too.")
    async with Client(server) as client:
        listed = {t.name: t.description for t in (await client.list_tools()).tools}
        failed = await client.call_tool("diagnose", {"service": "checkout"})
        ran = await client.call_tool("diagnose", {"service": "checkout"})
    assert (listed["status"], listed["diagnose"]) == ("Poisoned.", "Poisoned too.")
    assert failed.is_error
    assert not ran.is_error


def test_the_count_holds_across_servers_reading_one_file(control: Path) -> None:
    fail_next_calls(control, "diagnose", UNAVAILABLE, count=3)
    script = (
        "import asyncio, sys\n"
        "from mcp import Client\n"
        "from awooop.mcp_gateway.demo_server import overrides, server\n"
        "async def main():\n"
        "    async with Client(server) as client:\n"
        "        for _ in range(2):\n"
        "            r = await client.call_tool('diagnose', {'service': 'checkout'})\n"
        "            print(int(r.is_error))\n"
        "asyncio.run(main())\n"
    )
    servers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in servers]
    failed = sum(int(line) for output in outputs for line in output.split())
    assert failed == 3  # of four calls at two servers, exactly the three the file named
    assert [rule["remaining"] for rule in failures_left(control)] == [0]

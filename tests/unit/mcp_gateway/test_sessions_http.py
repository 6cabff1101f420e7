"""The MCP session pool against the session test server over streamable HTTP.

The server (see `test_sessions.SERVER_SOURCE`) runs in a process of its own per
test and journals every request it receives, with the SHA-256 of each credential
header; a file named by `AWOOOP_DEMO_MCP_HTTP_STATUS` makes it answer tool calls
with that HTTP status and a body quoting every request header.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_sessions import (
    JOURNAL_VARIABLE,
    STATUS_VARIABLE,
    digest,
    journal,
    tool_doc,
    write_server,
)

from awooop.contracts.families.tool import Tool
from awooop.mcp_gateway.adapters.mcp_sessions import CallFailure, McpSessionPool
from awooop.security.tool_pins import tool_pin_sha256
from support.pipeline import wait_for

pytestmark = pytest.mark.unit

SESSION_METHODS = ("server/discover", "initialize")
"""What a client sends once per session it opens (2026 protocol, older ones)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class HttpServer:
    """The test server over HTTP on a port of its own; `start()` again after `kill()`."""

    def __init__(self, folder: Path) -> None:
        self.script = write_server(folder)
        self.journal = folder / "journal.jsonl"
        self.status_file = folder / "status"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            JOURNAL_VARIABLE: str(self.journal),
            STATUS_VARIABLE: str(self.status_file),
        }
        command = [sys.executable, str(self.script), "http", str(self.port)]
        self.process = subprocess.Popen(command, env=env)

    async def ready(self) -> None:
        def answers() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return False
            return True

        await wait_for(answers, within=20, message="the HTTP test server to listen")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def tool(self, name: str, **kwargs: Any) -> Tool:
        return tool_doc(name, {"kind": "streamable_http", "url": self.url}, **kwargs)

    def requests(self) -> list[dict[str, Any]]:
        return journal(self.journal, "request")

    def sessions(self) -> int:
        return sum(1 for r in self.requests() if r["method"] in SESSION_METHODS)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HttpServer]:
    here = HttpServer(tmp_path)
    here.start()
    try:
        await here.ready()
        yield here
    finally:
        here.kill()


@pytest.fixture
def tenant_secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"API_KEY": "alpha-api-key-123", "AUTHORIZATION": "Bearer alpha-token-456"}
    for name, value in values.items():
        monkeypatch.setenv(f"AWOOOP_TENANT_ALPHA_{name}", value)
    return values


CREDENTIALS = {"API_KEY": "env:API_KEY", "AUTHORIZATION": "env:AUTHORIZATION"}


async def test_calls_carry_the_credentials_as_headers_over_one_session(
    server: HttpServer, tenant_secrets: dict[str, str]
) -> None:
    pool = McpSessionPool()
    echo = server.tool("echo", credentials=CREDENTIALS)
    try:
        answers = await asyncio.gather(
            *(pool.call("alpha", echo, {"text": f"t{n}"}) for n in range(4))
        )
        answers.append(await pool.call("alpha", echo, {"text": "again"}))
    finally:
        await pool.close()

    assert [a.structured for a in answers] == [{"text": f"t{n}"} for n in range(4)] + [
        {"text": "again"}
    ]
    assert server.sessions() == 1
    assert pool.opened_for == {("alpha", "sessiontest"): 1}
    expected = {
        "x-credential-api-key": digest(tenant_secrets["API_KEY"]),
        "authorization": digest(tenant_secrets["AUTHORIZATION"]),
    }
    calls = [r for r in server.requests() if r["method"] == "tools/call"]
    assert len(calls) == 5
    assert all(r["credentials"] == expected for r in server.requests())


async def test_a_session_to_a_server_that_went_away_is_reopened_when_it_is_back(
    server: HttpServer,
) -> None:
    pool = McpSessionPool(open_timeout=5.0, call_timeout=5.0)
    echo = server.tool("echo")
    try:
        await pool.call("alpha", echo, {"text": "before"})
        server.kill()
        with pytest.raises(CallFailure) as failed:
            await pool.call("alpha", echo, {"text": "while down"})
        assert failed.value.transient is True
        await wait_for(lambda: pool.listing("alpha", echo) is None, message="the session to end")

        server.start()
        await server.ready()
        again = await pool.call("alpha", echo, {"text": "after"})
    finally:
        await pool.close()

    assert again.structured == {"text": "after"}
    assert pool.opened == {"sessiontest": 2}
    assert server.sessions() == 2


@pytest.mark.parametrize(
    ("status", "transient"), [(503, True), (429, True), (502, True), (401, False), (403, False)]
)
async def test_an_http_status_decides_transient_or_permanent_and_no_secret_shows(
    server: HttpServer, tenant_secrets: dict[str, str], status: int, transient: bool
) -> None:
    pool = McpSessionPool()
    echo = server.tool("echo", credentials=CREDENTIALS)
    try:
        await pool.current_listing("alpha", echo)  # the session stands before the refusals
        server.status_file.write_text(str(status))
        with pytest.raises(CallFailure) as failed:
            await pool.call("alpha", echo, {"text": "x"})
    finally:
        await pool.close()

    assert failed.value.transient is transient
    assert f"HTTP {status}" in failed.value.reason
    for value in tenant_secrets.values():
        assert value not in failed.value.reason
        assert value not in str(failed.value)


async def test_the_listing_follows_a_change_the_http_server_announces(
    server: HttpServer,
) -> None:
    pool = McpSessionPool()
    echo = server.tool("echo")
    schema = {
        "properties": {"text": {"title": "Text", "type": "string"}},
        "required": ["text"],
        "title": "echoArguments",
        "type": "object",
    }
    try:
        before = await pool.current_listing("alpha", echo)
        assert before["echo"] == tool_pin_sha256("Echoes the text.", schema)
        await pool.call("alpha", server.tool("redescribe"), {"text": "Changed.", "announce": True})
        changed = tool_pin_sha256("Changed.", schema)
        await wait_for(
            lambda: (pool.listing("alpha", echo) or {}).get("echo") == changed,
            within=10,
            message="the announced change to reach the listing",
        )
    finally:
        await pool.close()
    assert server.sessions() == 1

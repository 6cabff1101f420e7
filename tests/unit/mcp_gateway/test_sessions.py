"""The MCP session pool against a real MCP server of its own, started over stdio.

The server (`SERVER_SOURCE`, written to a temporary file and run with this
interpreter) keeps a journal, as JSON lines in the file named by
`AWOOOP_DEMO_MCP_JOURNAL`: one `started` entry per process, with the SHA-256 of
every variable of its environment, so a test counts sessions and sees what
reached the server without any secret value being written down. Over HTTP
(`test_sessions_http`) it journals every request with the hashes of its
credential headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND

from awooop.contracts.families.tool import Tool
from awooop.mcp_gateway.adapters.mcp_sessions import (
    CallFailure,
    CredentialUnavailable,
    McpSessionPool,
    SessionUnavailable,
)
from awooop.security.tool_pins import tool_pin_sha256
from support.pipeline import wait_for

pytestmark = pytest.mark.unit

JOURNAL_VARIABLE = "AWOOOP_DEMO_MCP_JOURNAL"
STATUS_VARIABLE = "AWOOOP_DEMO_MCP_HTTP_STATUS"

SERVER_SOURCE = """
import asyncio, hashlib, json, os, sys

from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer

JOURNAL = os.environ["AWOOOP_DEMO_MCP_JOURNAL"]


def digest(value):
    return hashlib.sha256(value.encode()).hexdigest()


def note(**entry):
    with open(JOURNAL, "a") as journal:
        journal.write(json.dumps(entry) + "\\n")


server = MCPServer("session-test", log_level="WARNING")


def echo(text: str) -> dict[str, str]:
    return {"text": text}


server.add_tool(echo, description="Echoes the text.")


@server.tool(description="Sleeps, then answers.")
async def slow(seconds: float) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@server.tool(description="Refuses with a JSON-RPC error.")
def refuse(code: int, message: str) -> dict[str, str]:
    raise MCPError(code, message)


@server.tool(description="Gives echo a new description, announced or not.")
async def redescribe(text: str, announce: bool, ctx: Context) -> dict[str, str]:
    server.remove_tool("echo")
    server.add_tool(echo, description=text)
    if announce:
        await ctx.notify_tools_changed()
    return {"description": text}


def http_app():
    app = server.streamable_http_app()
    status_file = os.environ.get("AWOOOP_DEMO_MCP_HTTP_STATUS", "")

    async def journaled(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        received, body = [], b""
        while True:
            message = await receive()
            received.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            method = json.loads(body).get("method")
        except ValueError:
            method = None
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        sent = {
            k: digest(v) for k, v in headers.items()
            if k.startswith("x-credential-") or k == "authorization"
        }
        note(event="request", method=method, credentials=sent)
        if method == "tools/call" and status_file and os.path.exists(status_file):
            status = int(open(status_file).read())
            echoed = ("refused: " + json.dumps(headers)).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": echoed})
            return None
        replay = iter(received)

        async def again():
            return next(replay, None) or await receive()

        return await app(scope, again, send)

    return journaled


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        import uvicorn

        uvicorn.run(http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        env = {k: digest(v) for k, v in os.environ.items()}
        note(event="started", pid=os.getpid(), env=env)
        server.run()
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def write_server(folder: Path) -> Path:
    path = folder / "session_test_server.py"
    path.write_text(SERVER_SOURCE)
    return path


def journal(path: Path, event: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [entry for entry in entries if entry["event"] == event]


def tool_doc(
    tool: str,
    transport: dict[str, Any],
    *,
    provider: str = "sessiontest",
    credentials: Mapping[str, str] | None = None,
) -> Tool:
    """A contract of the test server's `tool` (its pin is not what the gate compares here)."""
    schema = {"type": "object"}
    return Tool.model_validate(
        {
            "family": "tool",
            "schema_version": 1,
            "name": f"{tool}__{provider}",
            "provider": provider,
            "tool": tool,
            "description": "A tool of the session test server.",
            "transport": transport,
            "scope": "read",
            "is_destructive": False,
            "observation_only": False,
            "input_schema": schema,
            "pinned_sha256": tool_pin_sha256("A tool of the session test server.", schema),
            "credentials": dict(credentials or {}),
            "enabled": True,
        }
    )


class StdioServer:
    """The test server's command and journal for one test."""

    def __init__(self, folder: Path) -> None:
        self.script = write_server(folder)
        self.journal = folder / "journal.jsonl"
        self.transport = {"kind": "stdio", "command": ["{python}", str(self.script)]}

    def tool(self, name: str, **kwargs: Any) -> Tool:
        return tool_doc(name, self.transport, **kwargs)

    def starts(self) -> list[dict[str, Any]]:
        return journal(self.journal, "started")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StdioServer:
    here = StdioServer(tmp_path)
    monkeypatch.setenv(JOURNAL_VARIABLE, str(here.journal))
    return here


@pytest.fixture
async def pool() -> AsyncIterator[McpSessionPool]:
    sessions = McpSessionPool(open_timeout=15.0, call_timeout=10.0)
    try:
        yield sessions
    finally:
        await sessions.close()


async def listed_directly(command: list[str], env: dict[str, str]) -> dict[str, str]:
    """The server's pins computed as the deploy contract tests compute them."""
    params = StdioServerParameters(command=sys.executable, args=command, env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
    return {t.name: tool_pin_sha256(t.description or "", t.input_schema) for t in listed.tools}


async def test_one_session_serves_every_call_of_a_project_and_provider(
    server: StdioServer, pool: McpSessionPool
) -> None:
    echo = server.tool("echo")
    answers = await asyncio.gather(*(pool.call("alpha", echo, {"text": f"t{n}"}) for n in range(6)))
    answers.append(await pool.call("alpha", server.tool("slow"), {"seconds": 0}))

    assert [a.structured for a in answers[:6]] == [{"text": f"t{n}"} for n in range(6)]
    assert answers[6].structured == {"slept": 0}
    assert len(server.starts()) == 1, "the server was started more than once"
    assert pool.opened_for[("alpha", "sessiontest")] == 1


async def test_a_session_whose_server_was_killed_is_reopened(
    server: StdioServer, pool: McpSessionPool
) -> None:
    echo = server.tool("echo")
    await pool.call("alpha", echo, {"text": "before"})
    (first,) = server.starts()
    os.kill(first["pid"], signal.SIGKILL)
    await wait_for(lambda: pool.listing("alpha", echo) is None, message="the session to end")

    again = await pool.call("alpha", echo, {"text": "after"})

    assert again.structured == {"text": "after"}
    assert [s["pid"] != first["pid"] for s in server.starts()] == [False, True]
    assert pool.opened == {"sessiontest": 2}


async def test_a_stdio_server_gets_its_credentials_and_nothing_of_the_gateway(
    server: StdioServer, pool: McpSessionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway_own = {
        "AWOOOP_DATABASE_URL": "postgresql://admin:hunter2@db/awooop",
        "AWOOOP_DB_PASSWORD_MCP_GATEWAY": "gateway-db-password",
        "AWOOOP_CONTRACT_SIGNING_KEY": "k1:EdDSA:c2VjcmV0",
        "AWOOOP_API_JWT_SECRET": "jwt-secret",
        "AWOOOP_TENANT_BETA_API_KEY": "beta-key",
        "SOME_OTHER_SETTING": "other",
    }
    for name, value in gateway_own.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWOOOP_TENANT_ALPHA_API_KEY", "alpha-key")
    tool = server.tool("echo", credentials={"API_KEY": "env:API_KEY"})

    await pool.call("alpha", tool, {"text": "x"})

    (started,) = server.starts()
    env = started["env"]
    assert env["API_KEY"] == digest("alpha-key")
    assert env[JOURNAL_VARIABLE] == digest(str(server.journal))
    assert not set(env) & set(gateway_own)
    assert not {name for name in env if name.startswith("AWOOOP_TENANT_")}
    # The safe base, the SDK's own defaults, what the interpreter sets for itself (a
    # coerced locale), the demo server's variables and the credential: nothing else.
    allowed = {"PATH", "HOME", "LANG", "PYTHONPATH", "LOGNAME", "SHELL", "TERM", "USER"}
    allowed |= {"LC_CTYPE", "API_KEY"}
    assert {n for n in env if not n.startswith("AWOOOP_DEMO_MCP_")} <= allowed
    hashes = set(env.values())
    assert not hashes & {digest(v) for v in gateway_own.values()}


async def test_an_answer_carries_the_credentials_its_session_was_opened_with(
    server: StdioServer, pool: McpSessionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the executor blots from the answer, should the server repeat one of them.
    monkeypatch.setenv("AWOOOP_TENANT_ALPHA_API_KEY", "alpha-key-4821")
    tool = server.tool("echo", credentials={"API_KEY": "env:API_KEY"})

    answer = await pool.call("alpha", tool, {"text": "x"})

    assert answer.credentials == frozenset({"alpha-key-4821"})
    assert "alpha-key-4821" not in repr(answer)


async def test_a_tenants_env_reference_never_resolves_for_another_tenant(
    server: StdioServer, pool: McpSessionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWOOOP_TENANT_ALPHA_API_KEY", "alpha-key")
    tool = server.tool("echo", credentials={"API_KEY": "env:API_KEY"})

    await pool.call("alpha", tool, {"text": "a"})
    with pytest.raises(CredentialUnavailable) as refused:
        await pool.call("beta", tool, {"text": "b"})
    assert refused.value.transient is False
    assert "AWOOOP_TENANT_BETA_API_KEY" in refused.value.reason
    assert "alpha-key" not in refused.value.reason
    with pytest.raises(CredentialUnavailable):
        await pool.current_listing("beta", tool)
    assert pool.listing("beta", tool) is None

    monkeypatch.setenv("AWOOOP_TENANT_BETA_API_KEY", "beta-key")
    await pool.call("beta", tool, {"text": "b"})

    keys = [started["env"].get("API_KEY") for started in server.starts()]
    assert keys == [digest("alpha-key"), digest("beta-key")]
    assert pool.opened_for == {("alpha", "sessiontest"): 1, ("beta", "sessiontest"): 1}


async def test_a_file_reference_reads_the_projects_own_mounted_secret(
    server: StdioServer, tmp_path: Path
) -> None:
    root = tmp_path / "secrets"
    (root / "alpha").mkdir(parents=True)
    (root / "alpha" / "token").write_text("file-token\n")
    (root / "beta").mkdir()
    sessions = McpSessionPool(secrets_root=root, known_projects=lambda: ["alpha", "beta"])
    tool = server.tool("echo", credentials={"TOKEN": "file:token"})
    try:
        await sessions.call("alpha", tool, {"text": "a"})
        with pytest.raises(CredentialUnavailable, match="no such secret file"):
            await sessions.call("beta", tool, {"text": "b"})
    finally:
        await sessions.close()
    (started,) = server.starts()
    assert started["env"]["TOKEN"] == digest("file-token")


async def test_a_credential_may_not_replace_the_servers_base_environment(
    server: StdioServer, pool: McpSessionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWOOOP_TENANT_ALPHA_PATH", "/tmp/evil")
    tool = server.tool("echo", credentials={"PATH": "env:PATH"})
    with pytest.raises(CredentialUnavailable, match="PATH") as refused:
        await pool.call("alpha", tool, {"text": "x"})
    assert "/tmp/evil" not in refused.value.reason
    assert server.starts() == []


async def test_the_listing_pins_what_the_server_lists_as_the_deploy_contracts_do(
    server: StdioServer, pool: McpSessionPool
) -> None:
    echo = server.tool("echo")
    assert pool.listing("alpha", echo) is None

    listing = await pool.current_listing("alpha", echo)

    env = {JOURNAL_VARIABLE: str(server.journal)}
    assert dict(listing) == await listed_directly([str(server.script)], env)
    assert set(listing) == {"echo", "slow", "refuse", "redescribe"}
    assert pool.listing("alpha", echo) == listing


async def test_the_listing_follows_a_change_the_server_announces(
    server: StdioServer, pool: McpSessionPool
) -> None:
    echo = server.tool("echo")
    before = dict(await pool.current_listing("alpha", echo))
    schema = {
        "properties": {"text": {"title": "Text", "type": "string"}},
        "required": ["text"],
        "title": "echoArguments",
        "type": "object",
    }
    assert before["echo"] == tool_pin_sha256("Echoes the text.", schema)

    await pool.call("alpha", server.tool("redescribe"), {"text": "Poisoned.", "announce": True})

    changed = tool_pin_sha256("Poisoned.", schema)
    await wait_for(
        lambda: (pool.listing("alpha", echo) or {}).get("echo") == changed,
        within=10,
        message="the announced change to reach the listing",
    )
    assert (await pool.current_listing("alpha", echo))["echo"] == changed
    assert len(server.starts()) == 1


async def test_the_listing_is_refreshed_on_the_interval_without_an_announcement(
    server: StdioServer,
) -> None:
    sessions = McpSessionPool(tool_list_refresh=0.5)
    echo = server.tool("echo")
    try:
        before = (await sessions.current_listing("alpha", echo))["echo"]
        await sessions.call(
            "alpha", server.tool("redescribe"), {"text": "Quietly changed.", "announce": False}
        )
        await wait_for(
            lambda: (sessions.listing("alpha", echo) or {}).get("echo") not in (None, before),
            within=10,
            message="the interval's listing to see the change",
        )
    finally:
        await sessions.close()


async def test_a_call_that_runs_out_of_time_is_transient_and_keeps_the_session(
    server: StdioServer,
) -> None:
    sessions = McpSessionPool(call_timeout=0.5)
    try:
        with pytest.raises(CallFailure) as failed:
            await sessions.call("alpha", server.tool("slow"), {"seconds": 5})
        assert failed.value.transient is True
        assert "timed out" in failed.value.reason
        answer = await sessions.call("alpha", server.tool("echo"), {"text": "still here"})
        assert answer.structured == {"text": "still here"}
        assert sessions.opened == {"sessiontest": 1}
    finally:
        await sessions.close()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (INVALID_PARAMS, "Invalid params: count must be positive"),
        (METHOD_NOT_FOUND, "Unknown tool"),
    ],
)
async def test_a_refused_request_is_permanent(
    server: StdioServer, pool: McpSessionPool, code: int, message: str
) -> None:
    with pytest.raises(CallFailure) as failed:
        await pool.call("alpha", server.tool("refuse"), {"code": code, "message": message})
    assert failed.value.transient is False
    assert f"JSON-RPC {code}" in failed.value.reason
    assert pool.listing("alpha", server.tool("refuse")) is not None, "the session stays"


async def test_a_tools_own_error_is_an_answer_not_a_failure(
    server: StdioServer, pool: McpSessionPool
) -> None:
    answer = await pool.call("alpha", server.tool("nosuchtool"), {})
    assert answer.is_error is True
    assert answer.texts == ["Unknown tool: nosuchtool"]


async def test_a_server_that_cannot_start_is_unavailable_and_transient(
    pool: McpSessionPool,
) -> None:
    broken = tool_doc("echo", {"kind": "stdio", "command": ["/nonexistent/mcp"]})
    with pytest.raises(SessionUnavailable, match="sessiontest") as failed:
        await pool.call("alpha", broken, {})
    assert failed.value.transient is True
    assert pool.opened == {}
    assert pool.listing("alpha", broken) is None

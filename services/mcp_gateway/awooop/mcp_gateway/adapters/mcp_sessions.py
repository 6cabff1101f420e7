"""MCP sessions: one long-lived client session per tenant and server, reused by every call.

A server is a tool contract's provider reached by its transport; two projects never
share a session, even to the same command, so one tenant's server state (and later its
credentials) never serves another.

A session opens on its provider's first call and stays open; one that died
(its server exited, its pipe broke) is reopened on the next call. Opening is
serialised per provider, so concurrent first calls share one session.
`close()` ends them all.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

from mcp import MCPError
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult, TextContent
from mcp.types.jsonrpc import CONNECTION_CLOSED

from awooop.contracts.families.tool import StdioTransport, Tool
from awooop.infra.logging import get_logger
from awooop.mcp_gateway.adapters.provider_session import ProviderSession, SessionUnavailable
from awooop.mcp_gateway.domain.results import ToolAnswer

log = get_logger(__name__)

PYTHON_PLACEHOLDER = "{python}"

SessionKey = tuple[str, str, object]
"""(project, provider, transport): what one session serves."""


def server_parameters(tool: Tool) -> StdioServerParameters:
    """How to start the tool's provider: its contract's stdio command, `{python}` standing
    for this interpreter. `SessionUnavailable` for a transport not served yet."""
    transport = tool.transport
    if not isinstance(transport, StdioTransport):
        raise SessionUnavailable(f"{transport.kind} transport of {tool.name!r} is not served yet")
    command = [sys.executable if part == PYTHON_PLACEHOLDER else part for part in transport.command]
    return StdioServerParameters(command=command[0], args=command[1:])


def tool_answer(result: CallToolResult) -> ToolAnswer:
    """The SDK's result as the domain sees it; non-text blocks are named, not inlined."""
    texts = [
        block.text if isinstance(block, TextContent) else f"[{block.type} content]"
        for block in result.content
    ]
    structured: Mapping[str, Any] | None = result.structured_content
    return ToolAnswer(structured=structured, texts=texts, is_error=result.is_error)


class McpSessionPool:
    """Calls tools over one reused session per (project, provider, transport); `opened`
    counts sessions opened, by provider, and `opened_for` by (project, provider)."""

    def __init__(self, *, open_timeout: float = 20.0, call_timeout: float = 30.0) -> None:
        self._open_timeout = open_timeout
        self._call_timeout = call_timeout
        self._sessions: dict[SessionKey, ProviderSession] = {}
        self._opening: dict[SessionKey, asyncio.Lock] = {}
        self.opened: Counter[str] = Counter()
        self.opened_for: Counter[tuple[str, str]] = Counter()

    async def call(self, project_id: str, tool: Tool, arguments: dict[str, Any]) -> ToolAnswer:
        """Call `tool` (its provider's own tool name) with `arguments` for `project_id`.

        Raises `SessionUnavailable` when the provider's session cannot be opened
        and `MCPError` for a protocol error or a timeout; a tool's own failure
        is an answer with `is_error`, not an exception.
        """
        session = await self._session((project_id, tool.provider, tool.transport), tool)
        assert session.client is not None
        try:
            result = await session.client.call_tool(
                tool.tool, arguments, read_timeout_seconds=self._call_timeout
            )
        except MCPError as error:
            if error.code == CONNECTION_CLOSED:
                session.mark_ended()
            raise
        return tool_answer(result)

    async def _session(self, key: SessionKey, tool: Tool) -> ProviderSession:
        current = self._sessions.get(key)
        if current is not None and current.alive:
            return current
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            current = self._sessions.get(key)
            if current is not None and current.alive:
                return current
            if current is not None:
                log.warning("mcp_session_reopening", provider=tool.provider)
                await current.close()
            session = ProviderSession(tool.provider, server_parameters(tool), self._open_timeout)
            await session.open()
            self._sessions[key] = session
            self.opened[tool.provider] += 1
            self.opened_for[(key[0], tool.provider)] += 1
            return session

    async def close(self) -> None:
        """Close every session (their servers are asked to exit, then stopped)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions))

"""MCP sessions: one long-lived client session per tenant and server, reused by every call.

A server is a tool contract's provider reached by its transport (a stdio command
or a streamable HTTP URL). Two projects never share a session, even to the same
server, so one tenant's server state and credentials never serve another; the
credential references are part of what a session serves too, so a contract
that changes them gets a session with the new values.

A session opens on its provider's first use and stays open; one that died (its
server exited, its pipe broke, its HTTP connection failed, the server ended it)
is reopened on the next use. Opening is serialised per session, so concurrent
first calls share one session. Opening resolves the credentials, starts or
reaches the server and lists its tools; the listing is then kept current for
gate 1 (`listing`, `current_listing`). `close()` ends every session.

Every failure that produced no answer is a `CallFailure` (`call_errors`):
`SessionUnavailable` when the session could not be opened, and its subclass
`CredentialUnavailable` when a credential reference did not resolve.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult, TextContent

from awooop.contracts.families.tool import StdioTransport, Tool
from awooop.infra.logging import get_logger
from awooop.infra.settings import Settings
from awooop.mcp_gateway.adapters.call_errors import (
    CallFailure,
    CredentialUnavailable,
    SessionUnavailable,
)
from awooop.mcp_gateway.adapters.credentials import resolve_tool_credentials
from awooop.mcp_gateway.adapters.http_transport import credential_headers, http_session
from awooop.mcp_gateway.adapters.provider_session import Connect, ProviderSession, SessionTimings
from awooop.mcp_gateway.adapters.stdio_transport import (
    server_environment,
    stdio_parameters,
    stdio_session,
)
from awooop.mcp_gateway.domain.results import ToolAnswer

__all__ = [
    "CallFailure",
    "CredentialUnavailable",
    "McpSessionPool",
    "SessionUnavailable",
    "server_parameters",
    "tool_answer",
]

log = get_logger(__name__)

SessionKey = tuple[str, str, object, tuple[tuple[str, str], ...]]
"""(project, provider, transport, credential references): what one session serves."""


def _no_projects() -> Iterable[str]:
    return ()


def server_parameters(
    tool: Tool, environment: dict[str, str] | None = None
) -> StdioServerParameters:
    """How to start the tool's stdio server; `SessionUnavailable` for another transport."""
    transport = tool.transport
    if not isinstance(transport, StdioTransport):
        raise SessionUnavailable(f"{tool.name!r} is not reached over stdio", transient=False)
    return stdio_parameters(transport, environment or {})


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
    counts sessions opened, by provider, and `opened_for` by (project, provider).

    `secrets_root` is the folder of mounted tenant secrets (`file:`, `k8s:`);
    `known_projects` lists the projects the service knows, so that an ambiguous
    `env:` reference is refused; `environ` is where `env:` references and a stdio
    server's base environment are read (the process environment by default).
    """

    def __init__(
        self,
        *,
        open_timeout: float = 20.0,
        call_timeout: float = 30.0,
        tool_list_refresh: float = 300.0,
        secrets_root: Path | None = None,
        known_projects: Callable[[], Iterable[str]] = _no_projects,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._timings = SessionTimings(
            open_within=open_timeout, call_within=call_timeout, refresh_every=tool_list_refresh
        )
        self._secrets_root = secrets_root
        self._known_projects = known_projects
        self._environ = os.environ if environ is None else environ
        self._sessions: dict[SessionKey, ProviderSession] = {}
        self._opening: dict[SessionKey, asyncio.Lock] = {}
        self.opened: Counter[str] = Counter()
        self.opened_for: Counter[tuple[str, str]] = Counter()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        known_projects: Callable[[], Iterable[str]] = _no_projects,
    ) -> McpSessionPool:
        """The pool a gateway process runs: timeouts, listing interval and secrets
        folder from `settings`."""
        return cls(
            open_timeout=settings.mcp_open_timeout_seconds,
            call_timeout=settings.mcp_call_timeout_seconds,
            tool_list_refresh=settings.mcp_tool_list_refresh_seconds,
            secrets_root=settings.secrets_root,
            known_projects=known_projects,
        )

    async def call(self, project_id: str, tool: Tool, arguments: dict[str, Any]) -> ToolAnswer:
        """Call `tool` (its provider's own tool name) with `arguments` for `project_id`.

        A tool's own failure is an answer with `is_error`. Anything that produced no
        answer raises a `CallFailure` (`SessionUnavailable`, `CredentialUnavailable`
        when the session could not be opened), telling whether it is transient.
        """
        session = await self._session(project_id, tool)
        result = await session.call_tool(tool.tool, arguments)
        return replace(tool_answer(result), credentials=session.secrets)

    def listing(self, project_id: str, tool: Tool) -> Mapping[str, str] | None:
        """The live name → pin listing of `tool`'s server for `project_id`, from memory;
        None when no live session has listed it (never opened, or ended)."""
        session = self._sessions.get(_key(project_id, tool))
        return None if session is None else session.listing

    async def current_listing(self, project_id: str, tool: Tool) -> Mapping[str, str]:
        """The name → pin listing of `tool`'s server for `project_id`, opening the session
        when needed and listing again when the listing is stale or older than the
        refresh interval. Raises `SessionUnavailable` or `CredentialUnavailable`."""
        session = await self._session(project_id, tool)
        return await session.current_listing(self._timings.refresh_every)

    async def close(self) -> None:
        """Close every session (their servers are asked to exit, then stopped)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions))

    async def _session(self, project_id: str, tool: Tool) -> ProviderSession:
        key = _key(project_id, tool)
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
                del self._sessions[key]
                await current.close()
            session = self._new_session(project_id, tool)
            await session.open()
            self._sessions[key] = session
            self.opened[tool.provider] += 1
            self.opened_for[(project_id, tool.provider)] += 1
            return session

    def _new_session(self, project_id: str, tool: Tool) -> ProviderSession:
        try:
            credentials = resolve_tool_credentials(
                project_id,
                tool,
                env=self._environ,
                secrets_root=self._secrets_root,
                other_projects=self._known_projects(),
            )
            connect = self._connector(tool, credentials)
        except CredentialUnavailable as missing:
            log.warning("mcp_credential_unavailable", provider=tool.provider, reason=missing.reason)
            raise
        return ProviderSession(tool.provider, connect, self._timings, credentials.values())

    def _connector(self, tool: Tool, credentials: Mapping[str, str]) -> Connect:
        transport = tool.transport
        if isinstance(transport, StdioTransport):
            environment = server_environment(credentials, self._environ)
            return partial(stdio_session, stdio_parameters(transport, environment))
        headers = credential_headers(credentials)
        url = transport.url

        def connect_http(
            on_message: MessageHandlerFnT, _on_end: Callable[[], None]
        ) -> AbstractAsyncContextManager[Client]:
            return http_session(url, headers, on_message)

        return connect_http


def _key(project_id: str, tool: Tool) -> SessionKey:
    return (project_id, tool.provider, tool.transport, tuple(sorted(tool.credentials.items())))

"""The client sessions of the demo MCP server: a journal of what it served, and word to
them when a tool's description changes.

**The journal.** When `AWOOOP_DEMO_MCP_JOURNAL` names a file, the server appends one
JSON line per event, each written whole by one `write` in append mode, so that several
servers can share a file:

    {"event": "session_opened", "pid": 41, "transport": "stdio", "session": "stdio-41-1",
     "credentials": {"DEMO_TOKEN": "<sha256 hex of the value>"}}
    {"event": "call", "pid": 41, "transport": "stdio", "session": "stdio-41-1",
     "tool": "restart_service", "arguments": {"service": "checkout"}}
    {"event": "tools_list_changed", "pid": 41, "transport": "stdio", "sessions": [...]}

A call is journaled when it arrives, before its tool runs, whatever it answers.
Credentials are SHA-256 hashes, never values: over stdio, of each environment variable
named in `AWOOOP_DEMO_MCP_CREDENTIAL_NAMES` (comma-separated) that is set; over HTTP,
of the `authorization` and `x-credential-*` headers of the request opening the session
(keyed by lower-case name).

**Sessions.** MCP 2.3 serves two protocol eras, and the client's first request picks
one. A handshake-era client opens with `initialize`, and its session is the connection
(over HTTP, the `mcp-session-id` the server assigned). A 2026-07-28 client opens with
`server/discover` and then sends self-contained requests with no session at all: over
stdio (or in process) the stream is the session, but over HTTP nothing ties one request
to another, so its calls are journaled with `"session": null`, and each discover opens
a session of its own. A session id is `<transport>-<pid>-<n>`, but for a handshake
session over HTTP, where it is the `mcp-session-id`. `transport` is `"memory"` for a
client in the same process.

**tools/list_changed.** When the description overrides (`demo_control`) change, every
open handshake-era session gets `notifications/tools/list_changed` on its standalone
channel (over HTTP, the GET stream), and the server publishes the event to
`subscriptions/listen` streams, the 2026-07-28 way (`Client.listen(tools_list_changed=
True)`); a 2026-07-28 client that does not listen hears nothing. The change is noticed
before a `tools/list` or `tools/call`, and, with no request needed, by `watch_control`
within a tenth of a second (the entry point runs it beside the server).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged

from awooop.mcp_gateway.demo_control import DescriptionOverrides

JOURNAL_ENV = "AWOOOP_DEMO_MCP_JOURNAL"
CREDENTIAL_NAMES_ENV = "AWOOOP_DEMO_MCP_CREDENTIAL_NAMES"
CREDENTIAL_HEADER_PREFIX = "x-credential-"
WATCH_EVERY = 0.1
"""Seconds between two looks at the control file by `watch_control`."""
NOTIFY_WITHIN = 2.0
"""Seconds one session gets to take `notifications/tools/list_changed`."""

_OPENING = frozenset({"initialize", "server/discover"})
_CONTROLLED = frozenset({"tools/list", "tools/call"})


@dataclass
class OpenSession:
    id: str
    notifier: ServerSession | None
    """Handshake era only: reaches the session's standalone channel after its request."""


@dataclass
class Stream:
    """One per lifespan: a stdio process, an in-process client, or the HTTP app."""

    current: OpenSession | None = None


def append_journal(event: dict[str, Any]) -> None:
    """Append `event` as one line to the journal, if one is named; no-op otherwise."""
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        return
    line = (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def environment_credentials() -> dict[str, str]:
    names = os.environ.get(CREDENTIAL_NAMES_ENV, "").split(",")
    return {
        name: _sha256(os.environ[name])
        for name in sorted({name.strip() for name in names} - {""})
        if name in os.environ
    }


def header_credentials(request: Any) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for name, value in getattr(request, "headers", {}).items():
        lower = name.lower()
        if lower == "authorization" or lower.startswith(CREDENTIAL_HEADER_PREFIX):
            values.setdefault(lower, []).append(value)
    return {name: _sha256(", ".join(values[name])) for name in sorted(values)}


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _connection(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # The request context does not carry its Connection yet; the per-request session
    # proxy does. Over HTTP it holds the session id and the session's teardown.
    connection: Connection = ctx.session._connection
    return connection


class DemoSessions:
    """The server middleware, lifespan and watcher that keep the journal and announce
    description changes; `transport` is set by the entry point before serving."""

    def __init__(self, overrides: DescriptionOverrides) -> None:
        self.transport = "memory"
        self.bus = InMemorySubscriptionBus()
        self._overrides = overrides
        self._open: dict[str, OpenSession] = {}
        self._numbers = itertools.count(1)

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator[Stream]:
        stream = Stream()
        try:
            yield stream
        finally:
            if stream.current is not None:
                self._open.pop(stream.current.id, None)

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method in _CONTROLLED and self._overrides.refresh():
            await self.announce()
        if ctx.request_id is None:
            return await call_next(ctx)
        if ctx.method in _OPENING:
            result = await call_next(ctx)
            self._opened(ctx)
            return result
        if ctx.method == "tools/call":
            params = ctx.params or {}
            self._journal(
                "call",
                self._session_of(ctx),
                tool=params.get("name"),
                arguments=params.get("arguments") or {},
            )
        return await call_next(ctx)

    async def watch_control(self, every: float = WATCH_EVERY) -> None:
        """Look at the control file every `every` seconds and announce changes; runs until
        cancelled, beside the server in the same task group."""
        while True:
            await anyio.sleep(every)
            if self._overrides.refresh():
                await self.announce()

    async def announce(self) -> None:
        """Tell every open session that the tool list changed."""
        told = []
        for session in list(self._open.values()):
            if session.notifier is None:
                continue
            # A client that stopped reading must not hold up the others or the request.
            with anyio.move_on_after(NOTIFY_WITHIN):
                await session.notifier.send_tool_list_changed()
                told.append(session.id)
        await self.bus.publish(ToolsListChanged())
        append_journal(
            {
                "event": "tools_list_changed",
                "pid": os.getpid(),
                "transport": self.transport,
                "sessions": told,
            }
        )

    def _opened(self, ctx: ServerRequestContext[Any, Any]) -> None:
        notifier = ctx.session if ctx.method == "initialize" else None
        if self.transport != "http":
            stream: Stream = ctx.lifespan_context
            if stream.current is None:
                self._open_session(ctx, self._new_id(), notifier, stream)
            return
        if notifier is None:
            self._open_session(ctx, self._new_id(), None, None)
            return
        connection = _connection(ctx)
        session_id = connection.session_id or self._new_id()
        self._open_session(ctx, session_id, notifier, None)
        connection.exit_stack.callback(self._open.pop, session_id, None)

    def _session_of(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        if self.transport == "http":
            return _connection(ctx).session_id
        stream: Stream = ctx.lifespan_context
        if stream.current is None:  # a client that skipped the handshake and discovery
            self._open_session(ctx, self._new_id(), None, stream)
        assert stream.current is not None
        return stream.current.id

    def _open_session(
        self,
        ctx: ServerRequestContext[Any, Any],
        session_id: str,
        notifier: ServerSession | None,
        stream: Stream | None,
    ) -> None:
        session = OpenSession(session_id, notifier)
        if notifier is not None:
            self._open[session_id] = session
        if stream is not None:
            stream.current = session
        credentials = (
            header_credentials(ctx.request)
            if self.transport == "http"
            else environment_credentials()
        )
        self._journal("session_opened", session_id, credentials=credentials)

    def _new_id(self) -> str:
        return f"{self.transport}-{os.getpid()}-{next(self._numbers)}"

    def _journal(self, event: str, session: str | None, **fields: Any) -> None:
        append_journal(
            {
                "event": event,
                "pid": os.getpid(),
                "transport": self.transport,
                "session": session,
                **fields,
            }
        )

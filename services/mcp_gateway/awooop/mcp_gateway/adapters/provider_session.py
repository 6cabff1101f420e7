"""One MCP client session, owned by a task of its own from open to close, and its
server's live tool listing.

The SDK's client holds anyio task groups that must be entered and left by the
same task, while calls come from many tasks: so a dedicated task enters the
client, holds it open until `close()`, and leaves it. The session counts as
ended once the connection is gone: a stdio server's output ended (see
`stdio_transport`), the HTTP transport failed, or a call's error says the
connection closed or the server terminated the session.

Opening lists the server's tools; two background tasks of the session then keep
the listing current (`tool_listings.LiveListing`): one holds the stream of tool
changes open, one lists again on every change and at least every
`refresh_every` seconds. The notification handler only marks the listing stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from mcp import Client
from mcp.client.session import IncomingMessage, MessageHandlerFnT
from mcp.types import CallToolResult

from awooop.infra.logging import get_logger
from awooop.mcp_gateway.adapters.call_errors import (
    CallFailure,
    SessionUnavailable,
    classify_failure,
    error_types,
)
from awooop.mcp_gateway.adapters.http_transport import HttpObservation, observing
from awooop.mcp_gateway.adapters.tool_listings import LiveListing

__all__ = ["Connect", "ProviderSession", "SessionTimings", "SessionUnavailable"]

log = get_logger(__name__)

Connect = Callable[[MessageHandlerFnT, Callable[[], None]], AbstractAsyncContextManager[Client]]
"""Enters a client of the server, given the notification handler and the callback
that reports the connection's end."""

CLOSE_WITHIN = 10.0
"""Seconds a closing session gets to stop its server before its task is cancelled."""
SDK_TIMEOUT_LEAD = 1.0
"""The SDK's own request timeout fires this much before ours, so that it can tell the
server the request is abandoned."""
TOOLS_CHANGED = "notifications/tools/list_changed"


@dataclass(frozen=True, slots=True)
class SessionTimings:
    open_within: float
    """Seconds to start or reach the server, shake hands and list its tools."""
    call_within: float
    """Seconds one call or one listing may take."""
    refresh_every: float
    """The listing is never older than this while the session lives."""


class ProviderSession:
    """The session of one provider for one project; `client` is usable while `alive`.

    `secrets` are the credential values the session was opened with: blotted out of
    every failure reason it produces.
    """

    def __init__(
        self,
        provider: str,
        connect: Connect,
        timings: SessionTimings,
        secrets: Collection[str] = (),
    ) -> None:
        self.provider = provider
        self._connect = connect
        self._timings = timings
        self._secrets = frozenset(secrets)
        self.client: Client | None = None
        self.ended = False
        self._opened = False
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._error: BaseException | None = None
        self._opening_seen = HttpObservation()
        self._task: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._live: LiveListing | None = None

    @property
    def secrets(self) -> frozenset[str]:
        """The credential values the session was opened with."""
        return self._secrets

    @property
    def alive(self) -> bool:
        return self._opened and self.client is not None and not self.ended

    def mark_ended(self) -> None:
        self.ended = True

    @property
    def listing(self) -> Mapping[str, str] | None:
        """The last complete listing while the session lives, from memory."""
        if not self.alive or self._live is None:
            return None
        return self._live.pins

    async def open(self) -> None:
        """Open the session and list its tools; `SessionUnavailable` when either fails."""
        self._task = asyncio.create_task(self._own(), name=f"mcp-session-{self.provider}")
        try:
            await self._ready.wait()
        except asyncio.CancelledError:
            await self.close()  # nobody else knows this session yet: stop its server here
            raise
        if not self._opened:
            await self.close()
            error = self._error or RuntimeError("the session ended while opening")
            raise self._unavailable("could not open the MCP session", error, self._opening_seen)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call the server's tool `name`; a `CallFailure` for anything but an answer."""
        client = self.client
        if client is None or not self.alive:
            raise SessionUnavailable(f"the MCP session of provider {self.provider!r} has ended")
        within = self._timings.call_within
        with observing() as seen:
            try:
                async with asyncio.timeout(within + SDK_TIMEOUT_LEAD):
                    return await client.call_tool(name, arguments, read_timeout_seconds=within)
            except Exception as error:
                classified = classify_failure(
                    error,
                    http_statuses=seen.error_statuses,
                    transport_errors=seen.transport_errors,
                    secrets=self._secrets,
                )
                if classified.connection_lost:
                    self.mark_ended()
                failure = classified.failure()
                raise CallFailure(
                    f"tools/call {name!r} on provider {self.provider!r}: {failure.reason}",
                    failure.transient,
                ) from None

    async def current_listing(self, max_age: float) -> Mapping[str, str]:
        """The listing, listed again first when the server said its tools changed or
        when it is `max_age` seconds old; `SessionUnavailable` when listing fails."""
        live = self._live
        if live is None or not self.alive:
            raise SessionUnavailable(f"the MCP session of provider {self.provider!r} has ended")
        with observing() as seen:
            try:
                return await live.current(max_age)
            except Exception as error:
                raise self._unavailable("could not list the tools", error, seen) from None

    async def _refresh(self) -> Mapping[str, str] | None:
        """The background listing: None (logged) when it failed."""
        try:
            return await self.current_listing(self._timings.refresh_every)
        except SessionUnavailable as failure:
            log.warning("mcp_tool_listing_failed", provider=self.provider, reason=failure.reason)
            return None

    async def close(self) -> None:
        self.ended = True
        self._closing.set()
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=CLOSE_WITHIN)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _own(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                with observing() as self._opening_seen:
                    async with asyncio.timeout(self._timings.open_within):
                        connecting = self._connect(self._on_message, self.mark_ended)
                        self.client = client = await stack.enter_async_context(connecting)
                        live = LiveListing(
                            client,
                            self.provider,
                            list_within=self._timings.call_within,
                            refresh_every=self._timings.refresh_every,
                            alive=lambda: self.alive,
                        )
                        await live.current(0.0)
                self._live = live
                stack.push_async_callback(self._stop_background)
                self._background = [
                    asyncio.create_task(
                        live.keep_current(self._refresh), name=f"mcp-listing-{self.provider}"
                    ),
                    asyncio.create_task(live.hear_changes(), name=f"mcp-changes-{self.provider}"),
                ]
                self._opened = True
                self._ready.set()
                await self._closing.wait()
        except Exception as error:
            self._error = error
            if self._opened:
                log.warning("mcp_session_ended", provider=self.provider, error=error_types(error))
        finally:
            self.ended = True
            self._ready.set()

    async def _stop_background(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _on_message(self, message: IncomingMessage) -> None:
        if getattr(message, "method", None) == TOOLS_CHANGED:
            if self._live is not None:
                self._live.mark_changed()
        elif isinstance(message, Exception):
            log.debug("mcp_transport_error", provider=self.provider, error=type(message).__name__)

    def _unavailable(
        self, what: str, error: BaseException, seen: HttpObservation
    ) -> SessionUnavailable:
        classified = classify_failure(
            error,
            http_statuses=seen.error_statuses,
            transport_errors=seen.transport_errors,
            secrets=self._secrets,
        )
        if classified.connection_lost:
            self.mark_ended()
        transient = True if classified.transient is None else classified.transient
        return SessionUnavailable(
            f"{what} of provider {self.provider!r}: {classified.reason}", transient=transient
        )

"""A server's live tools as gate 1 compares them with their contracts: name → pin.

The pin of a listed tool is `tool_pin_sha256(description or "", input_schema)` of
the tool exactly as the server lists it, the same computation that pins the
deploy contracts, so a contract's `pinned_sha256` equals the listed pin until
the server changes the tool's description or input schema.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mcp import Client
from mcp.types import Tool as ListedTool
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from awooop.infra.logging import get_logger
from awooop.mcp_gateway.adapters.call_errors import error_types
from awooop.security.canonical_json import NotCanonicalizable
from awooop.security.tool_pins import tool_pin_sha256

log = get_logger(__name__)

MAX_PAGES = 100
"""A server whose listing goes on for more pages is taken as broken, not listed in part."""
RETRY_LISTING_AFTER = 5.0
"""Seconds between attempts while listing again keeps failing (at most the interval)."""


class ListingTooLong(RuntimeError):
    """The server kept handing out cursors past `MAX_PAGES` pages."""


@dataclass(frozen=True, slots=True)
class ToolListing:
    """One complete listing: `pins` by server-side tool name, taken at `listed_at`
    (the event loop's clock)."""

    pins: Mapping[str, str]
    listed_at: float


def listed_pin(tool: ListedTool) -> str | None:
    """The tool's pin, or None when its input schema has no canonical JSON form."""
    try:
        return tool_pin_sha256(tool.description or "", tool.input_schema)
    except NotCanonicalizable:
        return None


async def list_pins(client: Client, provider: str) -> Mapping[str, str]:
    """Every tool the server lists, page after page, by name → pin, read from the server
    (never from the client's response cache). A tool whose schema cannot be pinned is
    left out, so gate 1 refuses it like a tool the server does not list."""
    pins: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        for tool in page.tools:
            pin = listed_pin(tool)
            if pin is None:
                log.warning("mcp_tool_not_pinnable", provider=provider, tool=tool.name)
                continue
            pins[tool.name] = pin
        cursor = page.next_cursor
        if cursor is None:
            return MappingProxyType(pins)
    raise ListingTooLong(f"the tool listing of provider {provider!r} exceeds {MAX_PAGES} pages")


class LiveListing:
    """The listing of one open session's server, kept current.

    `mark_changed` (the session's notification handler calls it) only marks the
    listing stale and wakes `keep_current`: the listing itself always runs in a
    task, never inside the handler, which would hold up the receive loop that must
    deliver the listing's answer. `list_now` failures propagate to the caller;
    `keep_current` hands them to `refresh`'s caller through the session.
    """

    def __init__(
        self,
        client: Client,
        provider: str,
        *,
        list_within: float,
        refresh_every: float,
        alive: Callable[[], bool],
    ) -> None:
        self._client = client
        self._provider = provider
        self._list_within = list_within
        self._refresh_every = refresh_every
        self._alive = alive
        self._listing: ToolListing | None = None
        self._stale = False
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    @property
    def pins(self) -> Mapping[str, str] | None:
        return None if self._listing is None else self._listing.pins

    def mark_changed(self) -> None:
        self._stale = True
        self._changed.set()

    async def current(self, max_age: float) -> Mapping[str, str]:
        """The listing, listed again first when marked changed or `max_age` seconds old."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            listing = self._listing
            if listing is None or self._stale or loop.time() - listing.listed_at >= max_age:
                listing = await self._list_now()
            return listing.pins

    async def _list_now(self) -> ToolListing:
        self._stale = False  # a change announced from here on needs another listing
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self._list_within):
                pins = await list_pins(self._client, self._provider)
        except BaseException:
            self._stale = True
            raise
        self._listing = ToolListing(pins, listed_at=started)
        return self._listing

    async def keep_current(self, refresh: Callable[[], Awaitable[object]]) -> None:
        """Calls `refresh` on every announced change and whenever the listing turns
        `refresh_every` old; `refresh` reports its own failures and returns None."""
        loop = asyncio.get_running_loop()
        every = self._refresh_every
        while self._alive():
            listed_at = self._listing.listed_at if self._listing is not None else loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, listed_at + every - loop.time())):
                    await self._changed.wait()
            self._changed.clear()
            if await refresh() is None:
                await asyncio.sleep(min(every, RETRY_LISTING_AFTER))

    async def hear_changes(self) -> None:
        """Holds a `subscriptions/listen` stream for tool changes open where the server
        speaks the 2026 protocol and announces tool changes (its events reach the
        session's handler too); older servers send their notifications unasked."""
        client = self._client
        tools = client.server_capabilities.tools
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not (
            tools and tools.list_changed
        ):
            return
        pause = 1.0
        while self._alive():
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    if not subscription.honored.tools_list_changed:
                        return
                    pause = 1.0
                    self.mark_changed()  # a change may have passed before the stream stood
                    async for _event in subscription:
                        self.mark_changed()
            except Exception as error:
                log.info(
                    "mcp_tool_changes_unheard", provider=self._provider, error=error_types(error)
                )
            self.mark_changed()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._refresh_every)

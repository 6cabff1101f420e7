"""One MCP client session over stdio, owned by a task of its own from open to close.

The SDK's client holds anyio task groups that must be entered and left by the
same task, while calls come from many tasks: so a dedicated task enters the
client, holds it open until `close()`, and leaves it. The session counts as
ended as soon as the server's output ends (see `stdio_transport`), as well as
after an error that says the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from awooop.infra.logging import get_logger
from awooop.mcp_gateway.adapters.stdio_transport import watched_stdio

log = get_logger(__name__)

CLOSE_WITHIN = 10.0
"""Seconds a closing session gets to stop its server before its task is cancelled."""


class SessionUnavailable(RuntimeError):
    """A provider's session could not be opened (spawn, handshake or timeout failed)."""


class ProviderSession:
    """The session of one provider; `client` is usable while `alive`."""

    def __init__(self, provider: str, params: StdioServerParameters, open_within: float) -> None:
        self.provider = provider
        self._params = params
        self._open_within = open_within
        self.client: Client | None = None
        self.ended = False
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.ended

    def mark_ended(self) -> None:
        self.ended = True

    async def open(self) -> None:
        self._task = asyncio.create_task(self._own(), name=f"mcp-session-{self.provider}")
        try:
            await self._ready.wait()
        except asyncio.CancelledError:
            await self.close()  # nobody else knows this session yet: stop its server here
            raise
        if self.client is None:
            await self.close()
            raise SessionUnavailable(
                f"could not open the MCP session of provider {self.provider!r}: {self._error!r}"
            ) from self._error

    async def _own(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self._open_within):
                    client = Client(watched_stdio(self._params, self.mark_ended))
                    self.client = await stack.enter_async_context(client)
                self._ready.set()
                await self._closing.wait()
        except Exception as error:
            self._error = error
            if self.client is not None:
                log.warning("mcp_session_ended", provider=self.provider, error=repr(error))
        finally:
            self.ended = True
            self._ready.set()

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

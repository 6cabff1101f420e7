"""The SDK's stdio transport, watched: it tells when the connection to the server ended.

The SDK surfaces a dead server only as an error on the next request. The
session pool wants to know earlier, so that a server that died while idle
is reopened before a call is sent to it rather than failing that call: the
session's receive loop leaves its read stream exactly once, at end of
stream or on close, and that is what this wrapper reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from mcp.client.stdio import StdioServerParameters, stdio_client


class _EndReportingReadStream:
    """Delegates to the transport's read stream; calls `on_end` when reading stops."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        return await self._inner.receive()

    async def aclose(self) -> None:
        self._on_end()
        await self._inner.aclose()

    def __aiter__(self) -> _EndReportingReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._on_end()
            raise

    async def __aenter__(self) -> _EndReportingReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._on_end()
        result: bool | None = await self._inner.__aexit__(exc_type, exc_val, exc_tb)
        return result


@asynccontextmanager
async def watched_stdio(
    params: StdioServerParameters, on_end: Callable[[], None]
) -> AsyncIterator[tuple[Any, Any]]:
    """`stdio_client(params)`, calling `on_end` once the session stops reading from it."""
    async with stdio_client(params) as (read_stream, write_stream):
        yield _EndReportingReadStream(read_stream, on_end), write_stream

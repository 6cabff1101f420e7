"""The demo MCP server's stdio wire on the event loop's own pipes.

The SDK's `stdio_server()` reads and writes the standard streams through
`anyio.wrap_file`, which hands every line to a worker thread and back: two thread
switches per message, the largest share of the demo server's CPU under load. Given
streams of its own, it uses them instead; these are asyncio pipe transports on
duplicates of fd 0 and 1, so a line costs one read or write on the loop.

As the SDK does for its own streams, fd 0 and 1 are pointed elsewhere while serving
(the null device, and stderr) so that stray reads and prints never touch the wire.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

LINE_LIMIT = 64 * 1024 * 1024
"""Longest message line read (the SDK's text wrapper has no limit either)."""


class PipeLines:
    """The server's input, one decoded line per iteration, until end of file."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class PipeWriter:
    """The server's output: `write` queues the text on the pipe, `flush` waits for room."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def stdio_are_pipes() -> bool:
    """Both standard streams are pipes or sockets (what a client that spawned us gives)."""
    try:
        return all(_pipe_like(os.fstat(fd).st_mode) for fd in (0, 1))
    except OSError:
        return False


def _pipe_like(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def pipe_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """(stdin lines, stdout writer) for `mcp.server.stdio.stdio_server(stdin, stdout)`."""
    loop = asyncio.get_running_loop()
    # Above the standard range, as the SDK's own claim does: a closed stderr never
    # hands its number to the wire.
    wire_in, wire_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (0, 1))
    saved_in, saved_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (0, 1))
    transports: list[asyncio.BaseTransport] = []
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
        )
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
        )
        transports.append(write_transport)
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        yield PipeLines(reader), PipeWriter(writer)
    finally:
        for transport in transports:
            transport.close()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)

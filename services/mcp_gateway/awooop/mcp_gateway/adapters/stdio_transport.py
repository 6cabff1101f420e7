"""MCP servers the gateway starts as processes: their command, environment and session.

The server's environment is built here, not inherited: the variables of a minimal
safe base (`PATH`, `HOME`, `LANG`, `PYTHONPATH` when set, and the demo server's
`AWOOOP_DEMO_MCP_*`) plus the tool's credentials under their contract names. The
gateway's own settings (its database URL and passwords, signing keys, other
tenants' `AWOOOP_TENANT_*` secrets) never reach a server. The SDK's stdio client
adds its own safe defaults under ours (`HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`,
`USER`, see `mcp.client.stdio.get_default_environment`); a credential may not take
the name of any of these.

The SDK surfaces a dead server only as an error on the next request. The
session pool wants to know earlier, so that a server that died while idle
is reopened before a call is sent to it rather than failing that call: the
session's receive loop leaves its read stream exactly once, at end of
stream or on close, and that is what `watched_stdio` reports.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TextIO

from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import DEFAULT_INHERITED_ENV_VARS, StdioServerParameters, stdio_client

from awooop.contracts.families.tool import StdioTransport
from awooop.mcp_gateway.adapters.call_errors import CredentialUnavailable

PYTHON_PLACEHOLDER = "{python}"
"""A command part standing for this interpreter (the demo server runs on it)."""

BASE_VARIABLES = ("PATH", "HOME", "LANG", "PYTHONPATH")
PASSED_PREFIX = "AWOOOP_DEMO_MCP_"
"""The demo server's own settings (its test journal, its control file)."""

RESERVED_NAMES = frozenset(BASE_VARIABLES) | frozenset(DEFAULT_INHERITED_ENV_VARS)


def server_environment(
    credentials: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str]:
    """The environment of a stdio server: the safe base read from `environ`, then the
    credentials. `CredentialUnavailable` when a credential would replace a base variable."""
    for name in sorted(credentials):
        if name in RESERVED_NAMES or name.startswith(PASSED_PREFIX):
            raise CredentialUnavailable(
                f"credential name {name} is a variable of every server's base environment: "
                "give the credential another name in the tool contract"
            )
    environment = {name: environ[name] for name in BASE_VARIABLES if environ.get(name)}
    environment.update({k: v for k, v in environ.items() if k.startswith(PASSED_PREFIX)})
    environment.update(credentials)
    return environment


def stdio_parameters(
    transport: StdioTransport, environment: dict[str, str]
) -> StdioServerParameters:
    """How to start the server: the contract's command, `{python}` standing for this
    interpreter, in `environment` (see `server_environment`)."""
    command = [sys.executable if part == PYTHON_PLACEHOLDER else part for part in transport.command]
    return StdioServerParameters(command=command[0], args=command[1:], env=environment)


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
    """`stdio_client(params)`, calling `on_end` once the session stops reading from it.

    The server's stderr is discarded, not inherited: a server may print what it was
    given, or its own credentials, and nothing unredacted may reach the gateway's log."""
    async with stdio_client(params, errlog=discarded_output()) as (read_stream, write_stream):
        yield _EndReportingReadStream(read_stream, on_end), write_stream


@functools.cache
def discarded_output() -> TextIO:
    """One handle on the null device for the process's lifetime, for servers' stderr."""
    return open(os.devnull, "w")


@asynccontextmanager
async def stdio_session(
    params: StdioServerParameters, on_message: MessageHandlerFnT, on_end: Callable[[], None]
) -> AsyncIterator[Client]:
    """An entered client of the server `params` starts; `on_message` gets the server's
    notifications, `on_end` is called once the server's output ends."""
    transport = watched_stdio(params, on_end)
    async with Client(transport, message_handler=on_message, cache=None) as client:
        yield client

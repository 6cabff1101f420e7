"""MCP servers reached over streamable HTTP: credential headers, and what HTTP saw.

Credentials travel as request headers on every request of the session:
`X-Credential-<NAME>` with `_` written `-` (`API_KEY` → `X-Credential-API-KEY`),
except a credential named `AUTHORIZATION`, sent as the `Authorization` header.

The SDK turns most HTTP failures into a generic JSON-RPC error and drops the
status code, which is what tells an overloaded server (503) from a refusal (403).
So the HTTP client's transport is wrapped: while a call runs under `observing()`,
the error statuses of its responses and the type names of the exceptions under
its requests are noted on the call's own `HttpObservation`. The SDK sends each
request from a task started in the sending task's context, so concurrent calls
never see each other's notes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx2
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client

from awooop.mcp_gateway.adapters.call_errors import CredentialUnavailable

AUTHORIZATION = "AUTHORIZATION"
HEADER_PREFIX = "X-Credential-"
CONNECT_WITHIN = 30.0
READ_WITHIN = 300.0
"""An HTTP read may wait this long: a server holds a stream open between its events."""


@dataclass
class HttpObservation:
    """What the HTTP layer saw during one call."""

    error_statuses: list[int] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)


_observation: ContextVar[HttpObservation | None] = ContextVar("mcp_http_observation", default=None)


@contextmanager
def observing() -> Iterator[HttpObservation]:
    """Note what HTTP sees for requests sent from this context until the block ends."""
    seen = HttpObservation()
    token = _observation.set(seen)
    try:
        yield seen
    finally:
        _observation.reset(token)


def header_name(credential: str) -> str:
    if credential == AUTHORIZATION:
        return "Authorization"
    return HEADER_PREFIX + credential.replace("_", "-")


def credential_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    """The headers carrying `credentials`; `CredentialUnavailable` for a value a header
    cannot carry (anything but printable ASCII), naming the credential only."""
    headers: dict[str, str] = {}
    for name, value in sorted(credentials.items()):
        if not (value.isascii() and value.isprintable()):
            raise CredentialUnavailable(
                f"credential {name} holds characters an HTTP header cannot carry"
            )
        headers[header_name(name)] = value
    return headers


class _ObservedTransport(httpx2.AsyncBaseTransport):
    """The default transport, noting error statuses and exceptions on the current call."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        seen = _observation.get()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as error:
            if seen is not None:
                seen.transport_errors.append(type(error).__name__)
            raise
        if seen is not None and response.status_code >= 400:
            seen.error_statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def http_session(
    url: str, headers: Mapping[str, str], on_message: MessageHandlerFnT
) -> AsyncIterator[Client]:
    """An entered client of the server at `url`, sending `headers` with every request;
    `on_message` gets the server's notifications."""
    http = httpx2.AsyncClient(
        headers=dict(headers),
        timeout=httpx2.Timeout(CONNECT_WITHIN, read=READ_WITHIN),
        transport=_ObservedTransport(),
    )
    transport = streamable_http_client(url, http_client=http)
    async with http, Client(transport, message_handler=on_message, cache=None) as client:
        yield client

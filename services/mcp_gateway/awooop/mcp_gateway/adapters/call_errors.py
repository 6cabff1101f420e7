"""Why an MCP call produced no answer, and whether asking again may help.

Every failure of a call that produced no answer is a `CallFailure` with a bounded
`reason` and a `transient` flag. Transient: the connection or the server process
went away, a timeout, an overloaded or unreachable upstream (HTTP 429, 502, 503,
504). Permanent: the server refused the request itself (JSON-RPC invalid request,
method not found, invalid params; HTTP 400, 401, 403, 404), a credential that does
not resolve, and whatever is not recognised. A failure showing signs of both is
permanent: asking again only repeats a refusal.

`classify_failure` is pure. Its reason names exception types, JSON-RPC codes and
HTTP status codes, plus the JSON-RPC error message with every credential value of
the session blotted out; it never quotes other exception messages (an HTTP library
may echo a header value in one), bodies or headers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from mcp import MCPError
from mcp.types.jsonrpc import (
    CONNECTION_CLOSED,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
)

MAX_REASON_CHARS = 4096
CREDENTIAL_MARK = "[credential]"
SESSION_TERMINATED = "Session terminated"
"""The SDK's message when a streamable HTTP server no longer knows the session (404)."""

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
PERMANENT_STATUSES = frozenset({400, 401, 403, 404})
PERMANENT_CODES = frozenset({INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS})

CONNECTION_TYPES = frozenset(
    {
        # the standard library: refused, reset, aborted, broken pipe, a vanished process
        "ConnectionError",
        "BrokenPipeError",
        "ProcessLookupError",
        # anyio: a stream to the server closed under a reader or a writer
        "ClosedResourceError",
        "BrokenResourceError",
        "EndOfStream",
        # httpx2 and httpcore2: the network between the gateway and an HTTP server
        "NetworkError",
        "ConnectError",
        "ReadError",
        "WriteError",
        "CloseError",
        "RemoteProtocolError",
    }
)
"""Exception types (by class name, anywhere in the class's ancestry) of a lost connection."""

TIMEOUT_TYPES = frozenset({"TimeoutError", "TimeoutException"})

TRANSIENT_PATTERNS = (
    "connection refused",
    "connection reset",
    "connection closed",
    "broken pipe",
    "timed out",
    "timeout",
    "session terminated",
    "server process exited",
    "temporarily unavailable",
    "too many requests",
    "service unavailable",
    "bad gateway",
)
PERMANENT_PATTERNS = (
    "invalid request",
    "invalid params",
    "invalid argument",
    "method not found",
    "unknown tool",
    "unauthorized",
    "forbidden",
    "permission denied",
    "bad request",
)

_MAX_CHAIN = 32
"""Exceptions looked at per failure (causes, contexts, group members)."""


class CallFailure(RuntimeError):
    """A call (or the session it needed) produced no answer; `reason` is at most
    `MAX_REASON_CHARS` long and holds no credential value; `transient` tells whether
    the same call may succeed later."""

    def __init__(self, reason: str, transient: bool) -> None:
        self.reason = bounded(reason)
        self.transient = transient
        super().__init__(self.reason)


class SessionUnavailable(CallFailure):
    """A provider's session could not be opened or listed (spawn, connection,
    handshake, listing or timeout failed). Transient unless the server refused."""

    def __init__(self, reason: str, *, transient: bool = True) -> None:
        super().__init__(reason, transient)


class CredentialUnavailable(SessionUnavailable):
    """A credential of the tool's contract could not be resolved (or cannot be handed
    to its server); the session is not opened. Permanent: a missing secret does not
    appear by trying again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, transient=False)


@dataclass(frozen=True, slots=True)
class Classified:
    """What one failure shows: `transient` is None when nothing was recognised."""

    reason: str
    transient: bool | None
    connection_lost: bool

    def failure(self, *, unrecognised_transient: bool = False) -> CallFailure:
        transient = unrecognised_transient if self.transient is None else self.transient
        return CallFailure(self.reason, transient)


def bounded(text: str) -> str:
    if len(text) <= MAX_REASON_CHARS:
        return text
    return text[: MAX_REASON_CHARS - 1] + "…"


def blot(text: str, secrets: Collection[str]) -> str:
    """`text` with every occurrence of every secret replaced by `CREDENTIAL_MARK`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, CREDENTIAL_MARK)
    return text


def classify_failure(
    error: BaseException,
    *,
    http_statuses: Collection[int] = (),
    transport_errors: Collection[str] = (),
    secrets: Collection[str] = (),
) -> Classified:
    """Classify `error` together with what the HTTP layer saw while it happened: the
    error statuses of the call's responses and the type names of the exceptions
    raised under its requests. A `CallFailure` classifies as itself."""
    if isinstance(error, CallFailure):
        return Classified(blot(error.reason, secrets), error.transient, connection_lost=False)
    transient: list[str] = []
    permanent: list[str] = []
    lost = False
    mcp_error = next((e for e in _chain(error) if isinstance(e, MCPError)), None)
    terminated = mcp_error is not None and _is_session_termination(mcp_error)
    for seen in _chain(error):
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & CONNECTION_TYPES:
            transient.append("connection lost")
            lost = True
        if names & TIMEOUT_TYPES:
            transient.append("timed out")
        message = str(seen).lower()
        transient.extend(p for p in TRANSIENT_PATTERNS if p in message)
        permanent.extend(p for p in PERMANENT_PATTERNS if p in message)
    if mcp_error is not None:
        code = mcp_error.code
        if code in (CONNECTION_CLOSED, REQUEST_TIMEOUT) or terminated:
            transient.append(f"JSON-RPC {code}")
            lost = lost or code == CONNECTION_CLOSED or terminated
        elif code in PERMANENT_CODES:
            permanent.append(f"JSON-RPC {code}")
    for name in transport_errors:
        if name in CONNECTION_TYPES or name in TIMEOUT_TYPES or "Timeout" in name:
            transient.append(name)
            lost = lost or name in CONNECTION_TYPES
    statuses = sorted(set(http_statuses) - ({404} if terminated else set()))
    transient.extend(f"HTTP {s}" for s in statuses if s in TRANSIENT_STATUSES)
    permanent.extend(f"HTTP {s}" for s in statuses if s in PERMANENT_STATUSES)
    if permanent:
        verdict: bool | None = False
    elif transient:
        verdict = True
    else:
        verdict = None
    reason = _reason(error, mcp_error, statuses, transport_errors, secrets)
    return Classified(bounded(reason), verdict, connection_lost=lost)


def _is_session_termination(error: MCPError) -> bool:
    return error.code == INVALID_REQUEST and error.message == SESSION_TERMINATED


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes and contexts, and the members of exception groups in it."""
    pending = [error]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def error_types(error: BaseException) -> str:
    """The type names of `error`, its causes and its group members: safe to log."""
    return " <- ".join(dict.fromkeys(type(e).__name__ for e in _chain(error)))


def _reason(
    error: BaseException,
    mcp_error: MCPError | None,
    statuses: list[int],
    transport_errors: Collection[str],
    secrets: Collection[str],
) -> str:
    parts = [error_types(error)]
    if mcp_error is not None:
        parts.append(f"JSON-RPC {mcp_error.code}: {blot(mcp_error.message, secrets)}")
    if statuses:
        parts.append("HTTP " + ", ".join(map(str, statuses)))
    if transport_errors:
        parts.append("HTTP transport: " + ", ".join(dict.fromkeys(transport_errors)))
    return "; ".join(parts)

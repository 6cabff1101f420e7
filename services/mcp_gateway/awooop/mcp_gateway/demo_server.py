"""The demo MCP server the project owns: diagnosis and simulated operations tools.

`status` reports a service's health; `uptime`, `recent_errors`, `disk_usage`
and `dependencies` are the diagnosis tools of the second demo tenant. Every
answer is a pure function of the arguments (no clock, no randomness, no I/O),
so a replayed run compares equal to the original: the numbers are drawn from
the SHA-256 of the arguments, the same on every machine.

The server also counts the `status` calls it has served, per `service`, and
answers the count through `served`. That is how a test sees an execution where
it happens: a call run twice shows as two at the server, even when everything
downstream of it deduplicated the second answer. No contract grants `served`,
so no run can call it; the count lives in this process and starts from zero
when the server does (decision 0050).

The operations tools (`demo_ops`) add simulated effects: a restart, a cache
prune, a wiped volume, plus `echo` and `tail_log` for the gateway's tests. The
server journals the sessions it opens and the calls it serves, and lists
replaced descriptions on demand (`demo_sessions`, `demo_control`).

Every tool is a coroutine: the SDK runs a plain function in a worker thread, two thread
switches per call for answers that need no I/O at all.

Run it as `python -m awooop.mcp_gateway.demo_server` to serve stdio, or with
`--http --port N [--host H]` to serve MCP streamable HTTP at `http://H:N/mcp`.

A tool contract pins each tool's description and input schema: changing either
here breaks the contracts under `deploy/contracts` until their `pinned_sha256`
is updated (the deploy contract tests say which).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, NoReturn

import anyio
import uvicorn
from pydantic import Field
from typing_extensions import TypedDict  # nested TypedDicts need it before Python 3.12

from awooop.mcp_gateway.demo_control import DemoServer, DescriptionOverrides
from awooop.mcp_gateway.demo_ops import draw, register_ops_tools
from awooop.mcp_gateway.demo_sessions import DemoSessions

overrides = DescriptionOverrides()
sessions = DemoSessions(overrides)
server = DemoServer(
    overrides,
    "awooop-demo",
    log_level="WARNING",
    lifespan=sessions.lifespan,
    subscriptions=sessions.bus,
    middleware=[sessions.middleware],
)

_status_calls: Counter[str] = Counter()

_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "checkout": ("billing", "inventory", "postgres", "redis"),
    "billing": ("payments-provider", "postgres"),
    "inventory": ("postgres", "search"),
    "search": ("opensearch",),
}
_ERRORS = (
    ("E-TIMEOUT", "upstream call timed out after 5 s"),
    ("E-POOL", "connection pool exhausted"),
    ("E-HTTP-502", "bad gateway from the load balancer"),
    ("E-RETRY", "retry budget spent"),
    ("E-SCHEMA", "response failed validation"),
)
_MOUNTS = ("/", "/var/lib/data", "/var/log")


class ServiceStatus(TypedDict):
    service: str
    status: str
    checks: int


class ServedCalls(TypedDict):
    service: str
    status_calls: int


class Uptime(TypedDict):
    service: str
    uptime_seconds: int
    restarts_last_day: int


class ErrorSeen(TypedDict):
    code: str
    message: str
    count: int


class RecentErrors(TypedDict):
    service: str
    errors: list[ErrorSeen]


class MountUsage(TypedDict):
    mount: str
    size_gb: int
    used_percent: int


class DiskUsage(TypedDict):
    host: str
    mounts: list[MountUsage]


class Dependencies(TypedDict):
    service: str
    dependencies: list[str]


@server.tool(description="Reports the health of one service of the demo estate.")
async def status(service: str) -> ServiceStatus:
    _status_calls[service] += 1
    return {"service": service, "status": "healthy", "checks": 3}


@server.tool(description="How many status calls this server process has served for a service.")
async def served(service: str) -> ServedCalls:
    return {"service": service, "status_calls": _status_calls[service]}


@server.tool(
    description="How long one service of the demo estate has been up, and its restarts today."
)
async def uptime(service: str) -> Uptime:
    drawn = draw("uptime", service)
    return {
        "service": service,
        "uptime_seconds": 3_600 + drawn % 2_592_000,
        "restarts_last_day": drawn % 3,
    }


@server.tool(description="The most frequent recent errors of one service of the demo estate.")
async def recent_errors(service: str, limit: Annotated[int, Field(ge=1, le=5)] = 3) -> RecentErrors:
    drawn = draw("recent_errors", service)
    picked = [_ERRORS[(drawn + step) % len(_ERRORS)] for step in range(limit)]
    errors: list[ErrorSeen] = [
        {"code": code, "message": message, "count": 1 + draw(service, code) % 40}
        for code, message in picked
    ]
    errors.sort(key=lambda seen: (-seen["count"], seen["code"]))
    return {"service": service, "errors": errors}


@server.tool(description="Disk usage of each mount of one host of the demo estate.")
async def disk_usage(host: str) -> DiskUsage:
    mounts: list[MountUsage] = [
        {
            "mount": mount,
            "size_gb": 20 * (1 + draw("size", host, mount) % 10),
            "used_percent": 5 + draw("used", host, mount) % 90,
        }
        for mount in _MOUNTS
    ]
    return {"host": host, "mounts": mounts}


@server.tool(description="The services and stores one service of the demo estate depends on.")
async def dependencies(service: str) -> Dependencies:
    return {"service": service, "dependencies": list(_DEPENDENCIES.get(service, ("postgres",)))}


register_ops_tools(server)


_PROG = "awooop.mcp_gateway.demo_server"


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _OneLineParser(
        prog=_PROG,
        description="The demo MCP server: stdio unless --http is given.",
    )
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP at /mcp")
    parser.add_argument("--port", type=_port, help="the HTTP port (with --http)")
    parser.add_argument("--host", help="the HTTP address (with --http; default 127.0.0.1)")
    args = parser.parse_args(argv)
    if args.http and args.port is None:
        parser.error("--http needs --port")
    if not args.http and (args.port is not None or args.host is not None):
        parser.error("--port and --host go with --http")
    return args


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound here rather than by uvicorn, so that a taken port or a bad host is one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError:
            sock.close()
            raise
    except OSError as error:
        sys.exit(f"{_PROG}: error: cannot listen on {host}:{port}: {error}")
    return sock


async def _serve_watched(serve: Callable[[], Awaitable[None]]) -> None:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sessions.watch_control)
        await serve()
        tasks.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    args = _arguments(argv)
    # Overrides present at start are the server's first word, not a change to announce.
    overrides.refresh()
    if not args.http:
        sessions.transport = "stdio"
        anyio.run(_serve_watched, server.run_stdio_on_pipes)
        return
    host = args.host or "127.0.0.1"
    sock = _listening_socket(host, args.port)
    sessions.transport = "http"
    app = server.streamable_http_app(host=host)
    # A legacy client holds a GET stream open: shutdown waits for it only briefly.
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    anyio.run(_serve_watched, lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()

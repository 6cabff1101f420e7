"""The demo MCP server the project owns: read-only diagnosis tools over stdio.

`status` reports a service's health; `uptime`, `recent_errors`, `disk_usage`
and `dependencies` are the diagnosis tools of the second demo tenant. Every
answer is a pure function of the arguments (no clock, no randomness, no I/O),
so a replayed run compares equal to the original: the numbers are drawn from
the SHA-256 of the arguments, the same on every machine. Run it as
`python -m awooop.mcp_gateway.demo_server`.

The server also counts the `status` calls it has served, per `service`, and
answers the count through `served`. That is how a test sees an execution where
it happens: a call run twice shows as two at the server, even when everything
downstream of it deduplicated the second answer. No contract grants `served`,
so no run can call it; the count lives in this process and starts from zero
when the server does (decision 0050).

A tool contract pins each tool's description and input schema: changing either
here breaks the contracts under `deploy/contracts` until their `pinned_sha256`
is updated (the deploy contract tests say which).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field
from typing_extensions import TypedDict  # nested TypedDicts need it before Python 3.12

server = MCPServer("awooop-demo", log_level="WARNING")

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


def _draw(*parts: str) -> int:
    """A number fixed by the arguments: the first 8 bytes of their SHA-256."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@server.tool(description="Reports the health of one service of the demo estate.")
def status(service: str) -> ServiceStatus:
    _status_calls[service] += 1
    return {"service": service, "status": "healthy", "checks": 3}


@server.tool(description="How many status calls this server process has served for a service.")
def served(service: str) -> ServedCalls:
    return {"service": service, "status_calls": _status_calls[service]}


@server.tool(
    description="How long one service of the demo estate has been up, and its restarts today."
)
def uptime(service: str) -> Uptime:
    drawn = _draw("uptime", service)
    return {
        "service": service,
        "uptime_seconds": 3_600 + drawn % 2_592_000,
        "restarts_last_day": drawn % 3,
    }


@server.tool(description="The most frequent recent errors of one service of the demo estate.")
def recent_errors(service: str, limit: Annotated[int, Field(ge=1, le=5)] = 3) -> RecentErrors:
    drawn = _draw("recent_errors", service)
    picked = [_ERRORS[(drawn + step) % len(_ERRORS)] for step in range(limit)]
    errors: list[ErrorSeen] = [
        {"code": code, "message": message, "count": 1 + _draw(service, code) % 40}
        for code, message in picked
    ]
    errors.sort(key=lambda seen: (-seen["count"], seen["code"]))
    return {"service": service, "errors": errors}


@server.tool(description="Disk usage of each mount of one host of the demo estate.")
def disk_usage(host: str) -> DiskUsage:
    mounts: list[MountUsage] = [
        {
            "mount": mount,
            "size_gb": 20 * (1 + _draw("size", host, mount) % 10),
            "used_percent": 5 + _draw("used", host, mount) % 90,
        }
        for mount in _MOUNTS
    ]
    return {"host": host, "mounts": mounts}


@server.tool(description="The services and stores one service of the demo estate depends on.")
def dependencies(service: str) -> Dependencies:
    return {"service": service, "dependencies": list(_DEPENDENCIES.get(service, ("postgres",)))}


def main() -> None:
    server.run()


if __name__ == "__main__":
    main()

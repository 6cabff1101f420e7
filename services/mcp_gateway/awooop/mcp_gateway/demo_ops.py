"""The operations tools of the demo MCP server, with simulated effects.

`diagnose` reads; `restart_service` and `prune_cache` write; `wipe_volume` destroys;
`echo` and `tail_log` exist for the gateway's tests (secrets planted in arguments, a
result too long to pass whole). Nothing here touches a real system: an effect is a
number kept in this process, starting from zero when the server does, so the same
calls in the same order give the same answers. Every other figure is drawn from the
SHA-256 of the arguments (`draw`), the same on every machine.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict  # nested TypedDicts need it before Python 3.12

MAX_LOG_LINES = 2000

_restarts: Counter[str] = Counter()
_wiped: set[str] = set()

_FINDINGS = (
    ("healthy", "no anomaly in the last hour", "none"),
    ("degraded", "connection pool exhausted since the last deploy", "restart_service"),
    ("degraded", "cache hit ratio under 40 %: stale entries crowd the cache", "prune_cache"),
    ("failing", "the data volume is full and writes are refused", "wipe_volume"),
)
_LOG_MESSAGES = (
    ("INFO", "request served in {n} ms"),
    ("INFO", "health check passed ({n} checks)"),
    ("WARN", "slow upstream answer after {n} ms"),
    ("ERROR", "connection pool exhausted, {n} requests waiting"),
    ("INFO", "cache refreshed, {n} entries"),
)
_LOG_START = datetime(2025, 1, 1, tzinfo=UTC)

ServiceName = Annotated[
    str,
    Field(min_length=1, max_length=64, description="A service of the demo estate, e.g. checkout."),
]
CacheName = Annotated[
    str,
    Field(min_length=1, max_length=64, description="A cache of the demo estate, e.g. sessions."),
]
VolumeName = Annotated[
    str,
    Field(min_length=1, max_length=64, description="A volume of the demo estate, e.g. scratch."),
]


_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]*")
"""How the demo estate names its services; `diagnose` knows no other."""


def draw(*parts: str) -> int:
    """A number fixed by the arguments: the first 8 bytes of their SHA-256."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Diagnosis(TypedDict):
    service: str
    verdict: str
    finding: str
    error_rate_percent: int
    suggested_action: str


class Restarted(TypedDict):
    service: str
    restarts: int


class Pruned(TypedDict):
    cache: str
    older_than_minutes: int
    pruned_entries: int
    remaining_entries: int


class Wiped(TypedDict):
    volume: str
    files_wiped: int
    bytes_wiped: int
    simulated: bool


class Echoed(TypedDict):
    payload: dict[str, Any]


async def diagnose(service: ServiceName) -> Diagnosis:
    if not _SERVICE_NAME.fullmatch(service):
        # An anticipated failure: the caller reads this text in an error result.
        raise ToolError(f"no service named {service!r} in the demo estate")
    drawn = draw("diagnose", service)
    verdict, finding, action = _FINDINGS[drawn % len(_FINDINGS)]
    rate = 0 if verdict == "healthy" else 1 + drawn % 30
    return {
        "service": service,
        "verdict": verdict,
        "finding": finding,
        "error_rate_percent": rate,
        "suggested_action": action,
    }


async def restart_service(service: ServiceName) -> Restarted:
    _restarts[service] += 1
    return {"service": service, "restarts": _restarts[service]}


async def prune_cache(
    cache: CacheName,
    older_than_minutes: Annotated[
        int, Field(ge=1, le=43_200, description="Prune the entries older than this.")
    ],
) -> Pruned:
    total = 200 + draw("cache", cache) % 9_800
    # The older the threshold, the fewer entries qualify: a day halves the cache.
    pruned = total * 1_440 // (1_440 + older_than_minutes)
    return {
        "cache": cache,
        "older_than_minutes": older_than_minutes,
        "pruned_entries": pruned,
        "remaining_entries": total - pruned,
    }


async def wipe_volume(volume: VolumeName) -> Wiped:
    if volume in _wiped:
        files, size = 0, 0
    else:
        _wiped.add(volume)
        files = 1 + draw("files", volume) % 50_000
        size = files * (4_096 + draw("bytes", volume) % 1_000_000)
    return {"volume": volume, "files_wiped": files, "bytes_wiped": size, "simulated": True}


async def echo(
    payload: Annotated[dict[str, Any], Field(description="Any JSON object.")],
) -> Echoed:
    return {"payload": payload}


async def tail_log(
    service: ServiceName,
    lines: Annotated[
        int, Field(ge=1, le=MAX_LOG_LINES, description="How many of the last lines to return.")
    ] = 100,
) -> str:
    start = _LOG_START + timedelta(seconds=draw("log", service) % 86_400)
    rows = []
    for number in range(lines):
        level, message = _LOG_MESSAGES[draw("line", service, str(number)) % len(_LOG_MESSAGES)]
        at = (start + timedelta(seconds=7 * number)).strftime("%Y-%m-%dT%H:%M:%SZ")
        figure = 1 + draw("figure", service, str(number)) % 900
        text = message.format(n=figure)
        rows.append(f"{at} {level:<5} {service}[{number + 1:04d}/{lines}] {text}")
    return "\n".join(rows) + "\n"


def register_ops_tools(server: MCPServer[Any]) -> None:
    """Add the operations tools to `server`, in the order `tools/list` shows them."""
    read = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
    server.add_tool(
        diagnose,
        description=(
            "Diagnoses one service of the demo estate: a verdict, the main finding, its "
            "error rate and the action that would fix it. Changes nothing."
        ),
        annotations=read,
    )
    server.add_tool(
        restart_service,
        description=(
            "Restarts one service of the demo estate (simulated) and returns how many "
            "times this server has restarted it."
        ),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False),
    )
    server.add_tool(
        prune_cache,
        description=(
            "Deletes the entries of one cache of the demo estate older than the given "
            "minutes (simulated) and returns how many were pruned and how many remain."
        ),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False),
    )
    server.add_tool(
        wipe_volume,
        description=(
            "Erases every file on one volume of the demo estate (simulated). Destructive: "
            "nothing on the volume survives; a volume already wiped has nothing left to erase."
        ),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
    )
    server.add_tool(
        echo,
        description="Returns its payload unchanged, as structured content.",
        annotations=read,
    )
    server.add_tool(
        tail_log,
        description=(
            "The last lines of one service's log in the demo estate, oldest first, as "
            f"plain text (at most {MAX_LOG_LINES} lines)."
        ),
        annotations=read,
        structured_output=False,
    )

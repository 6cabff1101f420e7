"""The demo MCP server the project owns: one read-only tool, `status`, served over stdio.

Its answers are a pure function of the arguments (no clock, no randomness), so
a replayed run compares equal to the original. Run it as
`python -m awooop.mcp_gateway.demo_server`.

The server also counts the `status` calls it has served, per `service`, and
answers the count through a second tool, `served`. That is how a test sees an
execution where it happens: a call run twice shows as two at the server, even
when everything downstream of it deduplicated the second answer. `served` is
not in the catalogue, so no run can call it; the count lives in this process
and starts from zero when the server does.
"""

from __future__ import annotations

from collections import Counter
from typing import TypedDict

from mcp.server.mcpserver import MCPServer

server = MCPServer("awooop-demo", log_level="WARNING")

_status_calls: Counter[str] = Counter()


class ServiceStatus(TypedDict):
    service: str
    status: str
    checks: int


class ServedCalls(TypedDict):
    service: str
    status_calls: int


@server.tool(description="Reports the health of one service of the demo estate.")
def status(service: str) -> ServiceStatus:
    _status_calls[service] += 1
    return {"service": service, "status": "healthy", "checks": 3}


@server.tool(description="How many status calls this server process has served for a service.")
def served(service: str) -> ServedCalls:
    return {"service": service, "status_calls": _status_calls[service]}


def main() -> None:
    server.run()


if __name__ == "__main__":
    main()

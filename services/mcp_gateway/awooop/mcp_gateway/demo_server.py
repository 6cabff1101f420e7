"""The demo MCP server the project owns: one read-only tool, `status`, served over stdio.

Its answers are a pure function of the arguments (no clock, no randomness), so
a replayed run compares equal to the original. Run it as
`python -m awooop.mcp_gateway.demo_server`.
"""

from __future__ import annotations

from typing import TypedDict

from mcp.server.mcpserver import MCPServer

server = MCPServer("awooop-demo", log_level="WARNING")


class ServiceStatus(TypedDict):
    service: str
    status: str
    checks: int


@server.tool(description="Reports the health of one service of the demo estate.")
def status(service: str) -> ServiceStatus:
    return {"service": service, "status": "healthy", "checks": 3}


def main() -> None:
    server.run()


if __name__ == "__main__":
    main()

"""Wiring of the mcp_gateway service: `awooop run mcp_gateway` runs `main()`."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.service_names import MCP_GATEWAY
from awooop.contracts.topics import Topics
from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run
from awooop.mcp_gateway.executor import ToolCallExecutor
from awooop.mcp_gateway.handlers import tool_call_requests

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def spec(executor: ToolCallExecutor | None = None) -> ServiceSpec:
    """The gateway: gate decisions on `run.events`, MCP calls in a background executor."""
    executor = executor or ToolCallExecutor()
    return ServiceSpec(
        service=MCP_GATEWAY,
        topics=(Topics.RUN_EVENTS.name,),
        processor=lambda _runner: tool_call_requests(executor.wake),
        branches=("store", MCP_GATEWAY),
        migrations=[MIGRATIONS],
        background=[executor.run],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

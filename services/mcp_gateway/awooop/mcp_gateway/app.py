"""Wiring of the mcp_gateway service: `awooop run mcp_gateway` runs `main()`.

The clock and the service name are chosen here, once, and handed to the handler
table and the executor with the runner's live contracts (tools).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run
from awooop.mcp_gateway.executor import ToolCallExecutor
from awooop.mcp_gateway.handlers import Clock, tool_call_requests

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spec(
    executor: ToolCallExecutor | None = None,
    clock: Clock = utc_now,
    service: str = MCP_GATEWAY,
) -> ServiceSpec:
    """The gateway: gate decisions on `run.events`, MCP calls in a background executor,
    tools read from the contracts."""
    executor = executor or ToolCallExecutor()
    return ServiceSpec(
        service=service,
        topics=(Topics.RUN_EVENTS.name,),
        processor=lambda runner: tool_call_requests(
            executor.wake, contracts=contracts_of(runner), clock=clock, service=service
        ),
        branches=("store", "contracts", service),
        reads_contracts=True,
        migrations=[MIGRATIONS],
        background=[executor.run],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

"""Wiring of the mcp_gateway service: `awooop run mcp_gateway` runs `main()`.

The clock and the service name are chosen here, once, and handed to the gate processor
and the executor with the runner's live contracts. Timeouts, concurrency and the
listing interval are settings (`awooop.infra.settings`), read when the service starts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.redis import create_redis
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.mcp_gateway.adapters.rate_limits import RateLimiter
from awooop.mcp_gateway.executor import ToolCallExecutor
from awooop.mcp_gateway.processor import Clock, GatewayProcessor

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spec(
    executor: ToolCallExecutor | None = None,
    clock: Clock = utc_now,
    service: str = MCP_GATEWAY,
) -> ServiceSpec:
    """The gateway: gate decisions on `run.events` (and kill switches from the budget
    events), MCP calls in a background executor, tools read from the contracts."""
    executor = executor or ToolCallExecutor()

    def processor(runner: ServiceRunner | None) -> GatewayProcessor:
        url = runner.settings.redis_url if runner is not None else None
        return GatewayProcessor(
            contracts=contracts_of(runner),
            listing=executor.listing,
            limiter=RateLimiter(create_redis(url) if url else None),
            wake_executor=executor.wake,
            clock=clock,
            service=service,
        )

    return ServiceSpec(
        service=service,
        topics=(Topics.RUN_EVENTS.name, Topics.BUDGET_EVENTS.name),
        processor=processor,
        branches=("store", "contracts", service),
        reads_contracts=True,
        migrations=[MIGRATIONS],
        background=[executor.run],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

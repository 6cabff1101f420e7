"""Wiring of the mcp_gateway service: `awooop run mcp_gateway` runs `main()`.

The clock and the service name are chosen here, once, and handed to the gate processor
and the executor with the runner's live contracts. Timeouts, concurrency, the retry
delay and the listing interval are settings (`awooop.infra.settings`), read when the
service starts, and so is the key ring that verifies approval tokens.
"""

from __future__ import annotations

import datetime as dt

from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.logging import get_logger
from awooop.infra.redis import create_redis
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.infra.settings import Settings
from awooop.mcp_gateway.adapters.rate_limits import RateLimiter
from awooop.mcp_gateway.adapters.used_tokens import EarlyReplayCheck
from awooop.mcp_gateway.executor import ToolCallExecutor
from awooop.mcp_gateway.processor import Clock, GatewayProcessor
from awooop.mcp_gateway.schema import SCHEMA
from awooop.security.approval_tokens import ApprovalTokenVerifier

log = get_logger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def approval_verifier(runner: ServiceRunner | None) -> ApprovalTokenVerifier | None:
    """The verifier of approval tokens: the running service's settings' ring, or outside a
    running service (`awooop dlq replay`) the environment's. Without a ring configured
    the gateway still runs, and refuses every approved call `E-MCP-GATE-008` (it can
    verify no token); a ring configured but invalid is a `SettingsError`: no start."""
    settings = runner.settings if runner is not None else Settings.from_env()
    if not settings.approval_token_verifying_keys:
        log.warning(
            "approval_tokens_unverifiable",
            reason="AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS is not set: approved calls are refused",
        )
        return None
    return ApprovalTokenVerifier(
        settings.approval_token_ring(), leeway_seconds=TOKEN_LEEWAY_SECONDS
    )


TOKEN_LEEWAY_SECONDS = 30.0
"""How far the approval service's clock (which stamps `nbf` and `exp`) may be from this
one: a token is never refused as not yet valid because the hosts disagree by a second."""


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
        redis = create_redis(url) if url else None
        return GatewayProcessor(
            contracts=contracts_of(runner),
            listing=executor.listing,
            limiter=RateLimiter(redis),
            wake_executor=executor.wake,
            clock=clock,
            service=service,
            verifier=approval_verifier(runner),
            replay_check=EarlyReplayCheck(redis),
        )

    return ServiceSpec(
        service=service,
        topics=(Topics.RUN_EVENTS.name, Topics.BUDGET_EVENTS.name),
        processor=processor,
        branches=("store", "contracts", service),
        reads_contracts=True,
        migrations=SCHEMA.migrations,
        background=[executor.run],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

"""The runtime process: the run processor on a BatchConsumer, the step pool beside it.

The clock and the service name are chosen here, once, and handed to the processor
and the step pool with the runner's live contracts (agents and policies).
"""

from __future__ import annotations

import datetime as dt
import os

from awooop.contracts.registries.service_names import RUNTIME
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.runtime.api.serving import command_api
from awooop.runtime.claim_handoff import ReplayRuntimeProcessor
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import Clock, StepPool
from awooop.runtime.schema import SCHEMA


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Wiring:
    """The one step pool of a runner, shared by its processor and its background job.

    A runner restarted after a broker recovery has a new pool and relay: it gets a new
    step pool (the old one's tasks ended with the old runner's)."""

    def __init__(self, clock: Clock, service: str) -> None:
        self._clock, self._service = clock, service
        self._step_pool: StepPool | None = None
        self._built_on: object = None

    def step_pool(self, runner: ServiceRunner) -> StepPool:
        if self._step_pool is None or self._built_on is not runner.pool:
            assert runner.pool is not None
            self._built_on = runner.pool
            relay = runner.relay
            self._step_pool = StepPool(
                runner.pool,
                runner.instance_id,
                relay.wake if relay is not None else (lambda: None),
                contracts=contracts_of(runner),
                clock=self._clock,
                service=self._service,
                lease_seconds=float(os.environ.get("AWOOOP_RUNTIME_LEASE_SECONDS", "30")),
                step_delay=float(os.environ.get("AWOOOP_SCRIPTED_STEP_DELAY_MS", "0")) / 1000,
                claimed=runner.metrics.counter(
                    "runtime_runs_claimed", "runs leased to this process, by a message or a claim"
                ),
            )
        return self._step_pool

    def processor(self, runner: ServiceRunner | None) -> RuntimeProcessor:
        if runner is None:  # outside a runtime process: the claim loops take the steps
            return ReplayRuntimeProcessor(
                contracts=contracts_of(None),
                clock=self._clock,
                service=self._service,
            )
        return RuntimeProcessor(
            self.step_pool(runner),
            contracts=contracts_of(runner),
            clock=self._clock,
            service=self._service,
        )

    async def scheduler(self, runner: ServiceRunner) -> None:
        await self.step_pool(runner).run()


def spec(clock: Clock = utc_now, service: str = RUNTIME) -> ServiceSpec:
    """The runtime: runs folded from ingress messages, gateway outcomes and approval events
    (requests posted into the run's chat, grants handed to the gateway), steps leased
    to a local pool, agents and policies read from the contracts; the command API (run
    cancel, budget reset) served beside them when `AWOOOP_RUNTIME_API_PORT` is set."""
    wiring = _Wiring(clock, service)
    return ServiceSpec(
        service=service,
        topics=(
            Topics.INGRESS_EVENTS.name,
            Topics.GATEWAY_EVENTS.name,
            Topics.APPROVAL_EVENTS.name,
        ),
        processor=wiring.processor,
        branches=SCHEMA.branches,
        reads_contracts=True,
        migrations=SCHEMA.migrations,
        background=[wiring.scheduler, command_api(clock, service)],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

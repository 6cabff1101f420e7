"""The runtime process: the run processor on a BatchConsumer, the step pool beside it."""

from __future__ import annotations

import os
from pathlib import Path

from awooop.contracts.topics import Topics
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import StepPool

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


class _Wiring:
    """The one step pool of a runner, shared by its processor and its background job."""

    def __init__(self) -> None:
        self._step_pool: StepPool | None = None

    def step_pool(self, runner: ServiceRunner) -> StepPool:
        if self._step_pool is None:
            assert runner.pool is not None
            relay = runner.relay
            self._step_pool = StepPool(
                runner.pool,
                runner.instance_id,
                relay.wake if relay is not None else (lambda: None),
                lease_seconds=float(os.environ.get("AWOOOP_RUNTIME_LEASE_SECONDS", "30")),
                step_delay=float(os.environ.get("AWOOOP_SCRIPTED_STEP_DELAY_MS", "0")) / 1000,
            )
        return self._step_pool

    def processor(self, runner: ServiceRunner) -> RuntimeProcessor:
        return RuntimeProcessor(self.step_pool(runner))

    async def scheduler(self, runner: ServiceRunner) -> None:
        await self.step_pool(runner).run()


def spec() -> ServiceSpec:
    wiring = _Wiring()
    return ServiceSpec(
        service="runtime",
        topics=(Topics.INGRESS_EVENTS.name, Topics.GATEWAY_EVENTS.name),
        processor=wiring.processor,
        branches=("store", "runtime"),
        migrations=[MIGRATIONS],
        background=[wiring.scheduler],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

"""Outbound delivery as a background job of the ingress service runner.

The job owns what lives as long as it does: the shared ``httpx.AsyncClient``, the DLQ
producer and the faststream broker. It uses the runner's pool (ingress's own role and
schema), its contract reader, readiness and metrics, and runs until the runner cancels
it (a stop or a broker-epoch halt).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping

import httpx

from awooop.contracts.registries.service_names import INGRESS
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.producer import DLQ_REQUEST_BYTES, create_producer
from awooop.infra.runner import ServiceRunner
from awooop.ingress.outbound.poison import PoisonGuard
from awooop.ingress.outbound.providers import ChatApis, quiet_http_logs
from awooop.ingress.outbound.settings import OutboundSettings, outbound_settings
from awooop.ingress.outbound.subscriber import OUTBOUND_GROUP, outbound_broker
from awooop.ingress.outbound.worker import OutboundWorker, utc_now


class OutboundJob:
    """``ServiceSpec.background`` entry; `worker` is the running worker (None until then).

    `settings` default to :func:`outbound_settings` read at start; `transport` replaces
    the HTTP client's network transport (tests serve the fake chat APIs through it);
    `env` is where ``env:`` credential references are read (the process environment).
    """

    __name__ = "outbound-delivery"

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        service: str = INGRESS,
        settings: OutboundSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._clock = clock
        self._env = env
        self._service = service
        self._settings = settings
        self._transport = transport
        self.worker: OutboundWorker | None = None

    async def __call__(self, runner: ServiceRunner) -> None:
        settings = self._settings or outbound_settings()
        assert runner.pool is not None, "background jobs start after the pool"
        quiet_http_logs()
        producer = create_producer(
            runner.settings.kafka,
            client_id=f"{self._service}-outbound-dlq",
            max_request_size=DLQ_REQUEST_BYTES,
        )
        async with httpx.AsyncClient(
            transport=self._transport, timeout=settings.timeout_seconds
        ) as client:
            self.worker = OutboundWorker(
                runner.pool,
                contracts_of(runner),
                ChatApis(client, settings),
                settings,
                service=self._service,
                clock=self._clock,
                env=self._env,
                readiness=runner.readiness,
                metrics=runner.metrics,
                on_reported=runner.relay.wake if runner.relay is not None else None,
            )
            guard = PoisonGuard(DeadLetters(producer, OUTBOUND_GROUP), readiness=runner.readiness)
            broker = outbound_broker(runner.settings.kafka, self.worker.handle, guard)
            await producer.start()
            try:
                await broker.start()
                await asyncio.Event().wait()  # until the runner cancels the job
            finally:
                await broker.stop()
                await producer.stop()

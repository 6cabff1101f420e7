"""Wiring of the ingress service: ``awooop run ingress`` lands in :func:`main`."""

from __future__ import annotations

import datetime as dt

from awooop.contracts.registries.service_names import INGRESS
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run
from awooop.ingress.handlers import Clock, IngressProcessor
from awooop.ingress.outbound.job import OutboundJob
from awooop.ingress.schema import SCHEMA


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spec(
    clock: Clock = utc_now, service: str = INGRESS, outbound: OutboundJob | None = None
) -> ServiceSpec:
    """Consumes ``awooop.channel.inbound.v1``; its own tables live on branch ``ingress``.

    Reads the contracts: a chat's binding decides the project and agent of its messages,
    and the bot an answer leaves through.

    The clock and the service name are chosen here and handed to the processor and to
    outbound delivery, a background job with its own consumer group on
    ``awooop.channel.outbound.v1`` (`outbound` replaces the default job: tests give it
    their own settings and HTTP transport).
    """
    return ServiceSpec(
        service=service,
        topics=(Topics.CHANNEL_INBOUND.name,),
        processor=lambda runner: IngressProcessor(
            contracts_of(runner), clock=clock, service=service
        ),
        branches=SCHEMA.branches,
        reads_contracts=True,
        migrations=SCHEMA.migrations,
        background=(outbound or OutboundJob(clock=clock, service=service),),
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

"""Wiring of the ingress service: ``awooop run ingress`` lands in :func:`main`."""

from __future__ import annotations

from awooop.contracts.service_names import INGRESS
from awooop.contracts.topics import Topics
from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run
from awooop.ingress.adapters import MIGRATIONS
from awooop.ingress.handlers import IngressProcessor


def spec() -> ServiceSpec:
    """Consumes ``awooop.channel.inbound.v1``; its own tables live on branch ``ingress``."""
    return ServiceSpec(
        service=INGRESS,
        topics=(Topics.CHANNEL_INBOUND.name,),
        processor=lambda _runner: IngressProcessor(),
        branches=("store", INGRESS),
        migrations=[MIGRATIONS],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

"""Wiring of the projector service: its topics, processor, schema branches and roles."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import PROJECTOR
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run
from awooop.projector.handlers import ReadModelProjector

SERVICE = PROJECTOR
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
API_ROLE = "awooop_api"


def spec() -> ServiceSpec:
    """The projector: Postgres offsets (exactly-once without an inbox), no relay."""
    return ServiceSpec(
        service=SERVICE,
        topics=(Topics.INGRESS_EVENTS.name, Topics.RUN_EVENTS.name, Topics.GATEWAY_EVENTS.name),
        processor=lambda _runner: ReadModelProjector(),
        branches=("offsets", SERVICE),
        offsets="postgres",
        relay=False,
        migrations=[MIGRATIONS],
        extra_roles=(API_ROLE,),
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

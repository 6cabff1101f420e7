"""Wiring of the projector service: its topics, processor, schema branches and roles."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import PROJECTOR
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.infra.settings import Settings
from awooop.projector.handlers import ReadModelProjector
from awooop.security.signing_keys import KeyRing

SERVICE = PROJECTOR
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
API_ROLE = "awooop_api"
TOPICS = (
    Topics.INGRESS_EVENTS.name,
    Topics.RUN_EVENTS.name,
    Topics.GATEWAY_EVENTS.name,
    Topics.APPROVAL_EVENTS.name,
    Topics.CONTRACT_EVENTS.name,
    Topics.BUDGET_EVENTS.name,
    Topics.CHANNEL_OUTBOUND.name,
    Topics.CHANNEL_DELIVERY.name,
)


def contract_ring(runner: ServiceRunner | None) -> KeyRing | None:
    """The ring that verifies contract publications.

    A running service's settings must name one: `SettingsError` otherwise, so the
    service refuses to start. Outside a running service (`awooop dlq replay`), the
    environment's ring when one is configured, else none (checks stay null)."""
    if runner is not None:
        return runner.settings.contract_key_ring()
    settings = Settings.from_env()
    return settings.contract_key_ring() if settings.contract_verifying_keys else None


def spec() -> ServiceSpec:
    """The projector: Postgres offsets (exactly-once without an inbox), no relay; its
    processor verifies contract publications with the settings' key ring."""
    return ServiceSpec(
        service=SERVICE,
        topics=TOPICS,
        processor=lambda runner: ReadModelProjector(ring=contract_ring(runner)),
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

"""Wiring of the projector service: its topics, processor, schema branches and roles."""

from __future__ import annotations

from awooop.contracts.registries.service_names import PROJECTOR
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.infra.settings import Settings
from awooop.projector.handlers import ReadModelProjector
from awooop.projector.schema import SCHEMA
from awooop.security.signing_keys import KeyRing

SERVICE = PROJECTOR
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
        branches=SCHEMA.branches,
        offsets="postgres",
        relay=False,
        migrations=SCHEMA.migrations,
        extra_roles=SCHEMA.extra_roles,
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

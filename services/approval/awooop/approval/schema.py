"""The approval service's schema: its event store and outbox, the contracts it reads,
and its own tables (approval requests, held calls, contract requests)."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import APPROVAL
from awooop.infra.postgres.schema import ServiceSchema

SCHEMA = ServiceSchema(
    service=APPROVAL,
    branches=("store", "contracts", APPROVAL),
    migrations=(Path(__file__).parent / "adapters" / "migrations",),
)

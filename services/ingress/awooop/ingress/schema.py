"""Ingress's schema: its event store and outbox, the contracts it reads, and its own
tables (provider events seen once, subjects, inbound records, deliveries)."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import INGRESS
from awooop.infra.postgres.schema import ServiceSchema

SCHEMA = ServiceSchema(
    service=INGRESS,
    branches=("store", "contracts", INGRESS),
    migrations=(Path(__file__).parent / "adapters" / "migrations",),
)

"""The runtime's schema: its event store and outbox, the contracts it reads, and its own
tables (runs, the budget ledger, queued messages, chat turns)."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import RUNTIME
from awooop.infra.postgres.schema import ServiceSchema

SCHEMA = ServiceSchema(
    service=RUNTIME,
    branches=("store", "contracts", RUNTIME),
    migrations=(Path(__file__).parent / "adapters" / "migrations",),
)

"""The gateway's schema: its event store and outbox, the contracts it reads, and its own
tables (tool calls, used approval tokens, tenant kill switches)."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.infra.postgres.schema import ServiceSchema

SCHEMA = ServiceSchema(
    service=MCP_GATEWAY,
    branches=("store", "contracts", MCP_GATEWAY),
    migrations=(Path(__file__).parent / "adapters" / "migrations",),
)

"""The projector's schema: its Postgres offsets and the read models, which the query
API's login role reads under row-level security."""

from __future__ import annotations

from pathlib import Path

from awooop.contracts.registries.service_names import PROJECTOR
from awooop.infra.postgres.schema import ServiceSchema

API_ROLE = "awooop_api"
"""The query API's login role: it owns nothing and reads the read models."""

SCHEMA = ServiceSchema(
    service=PROJECTOR,
    branches=("offsets", PROJECTOR),
    migrations=(Path(__file__).parent / "adapters" / "migrations",),
    extra_roles=(API_ROLE,),
)

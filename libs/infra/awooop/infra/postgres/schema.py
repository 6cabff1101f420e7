"""A service's Postgres schema on its own: its name, migration branches and folders.

Each service names its schema in a `schema` module of its own, apart from the `app`
module that wires its consumers. `awooop migrate` reads every service's schema and
runs none of them, so it imports the `schema` modules only and not the MCP SDK, the
OpenAI client or the web framework the services load. The broker recovery reads the
same modules for the schemas it refills (it still loads the projector's code, which
it runs to rebuild the read models).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceSchema:
    """What provisioning and migrations need of a service (see `SchemaSpec`)."""

    service: str
    branches: tuple[str, ...]
    """Its Alembic branches, shared ones (`store`, `contracts`, `offsets`) first."""
    migrations: tuple[Path, ...] = ()
    """Folders of its own migration scripts, beside the shared ones."""
    extra_roles: tuple[str, ...] = ()
    """Login roles its migrations grant to (e.g. `awooop_api`), made first."""

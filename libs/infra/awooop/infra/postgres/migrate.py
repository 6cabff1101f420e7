"""Run Alembic migrations for one service schema, logged in as that service's role.

Alembic keeps one version table per schema (`<schema>.alembic_version`);
branches (`store`, `offsets`, and later each service's own) are upgraded to
their heads independently. Concurrent migrators are serialised by an
advisory lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from awooop.infra.settings import sqlalchemy_url

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATE_LOCK = 0x6177_6F6F_6F71


def script_config(extra_locations: Sequence[Path] = ()) -> Config:
    """The Alembic config of the shared branches plus a service's own `extra_locations`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    locations = [MIGRATIONS / "versions", *extra_locations]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    return config


def _config(schema: str, connection: Connection, extra_locations: Sequence[Path]) -> Config:
    config = script_config(extra_locations)
    config.attributes["schema"] = schema
    config.attributes["connection"] = connection
    return config


async def migrate(
    service_url: str,
    schema: str,
    branches: Iterable[str],
    extra_locations: Sequence[Path] = (),
    *,
    role: str | None = None,
) -> None:
    """Upgrade `branches` (e.g. `["store"]`) to their heads in `schema`.

    With `role`, the login (an operator's admin URL) migrates as that role
    (`SET LOCAL ROLE`), so the role owns what the migration creates and its
    policies name it, as when the role logs in itself."""
    engine = create_async_engine(sqlalchemy_url(service_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
            if role is not None:
                await conn.execute(text(f'SET LOCAL ROLE "{role}"'))
            await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))

            def upgrade(sync_conn: Connection) -> None:
                config = _config(schema, sync_conn, extra_locations)
                for branch in branches:
                    command.upgrade(config, f"{branch}@head")

            await conn.run_sync(upgrade)
    finally:
        await engine.dispose()

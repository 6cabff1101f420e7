"""`awooop migrate`: every service's role, schema, migrations and inbox partitions.

An operator command, run once before services start (by `make run`, `awooop up`
and the test stacks) and again after each upgrade. It is the holder of the
admin URL; services only check that their schema is current and refuse to
start when it is not. Idempotent; concurrent runs take turns on one advisory
lock and both succeed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

import asyncpg

from awooop.cli.services import ENTRY_POINTS
from awooop.infra.postgres.provisioning import migrate_platform
from awooop.infra.postgres.schema import ServiceSchema
from awooop.infra.settings import Settings

SERVICE_APPS = {name: module for name, module in ENTRY_POINTS.items() if name != "api"}
"""Every service's `app` module; the query API owns no schema."""

SERVICE_SCHEMAS = {
    name: module.rsplit(".", 1)[0] + ".schema" for name, module in SERVICE_APPS.items()
}
"""Every service's `schema` module: what migrations need, without the service's code."""


class MigrateError(RuntimeError):
    """`awooop migrate` could not finish; the message says why in one line."""


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    migrate = verbs.add_parser(
        "migrate", help="provision roles and schemas, run every service's migrations"
    )
    migrate.set_defaults(handler=run_migrate)


def service_schemas() -> list[ServiceSchema]:
    """Every service's schema, as its `schema` module names it."""
    return [importlib.import_module(module).SCHEMA for module in SERVICE_SCHEMAS.values()]


def migrate_all(settings: Settings, report: Any = print) -> None:
    """Bring every service's schema up to date with `settings`' admin URL."""
    try:
        asyncio.run(
            migrate_platform(
                settings.admin_url,
                service_schemas(),
                settings.db_passwords,
                settings.role_passwords,
                report=report,
            )
        )
    except (OSError, asyncpg.PostgresError) as error:
        raise MigrateError(f"migration failed: {type(error).__name__}: {error}") from error


def run_migrate(_args: argparse.Namespace) -> int:
    migrate_all(Settings.from_env(admin=True))
    return 0

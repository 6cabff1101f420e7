"""Bringing the platform's schemas up to date, and the check a service makes at start.

`awooop migrate` (an operator command, the only holder of the admin URL) calls
`migrate_platform`: every service's role and schema, the login roles that own
nothing (the query API's `awooop_api`), every service's migration branches run
as the service's own role (so the service owns its tables), and the inbox
partitions a fresh schema needs. It is idempotent and holds one advisory lock
for the whole run, so two concurrent runs take turns and both succeed.

A service never migrates: `schema_behind` tells it, logged in as its own role,
whether its schema has reached the heads of its branches, and the service
refuses to start until it has (`E-SCHEMA-BEHIND`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import asyncpg
from alembic.script import ScriptDirectory

from awooop.infra.postgres import inbox
from awooop.infra.postgres.migrate import migrate, script_config
from awooop.infra.postgres.roles import (
    provision_login_roles,
    provision_services,
    quote_ident,
    role_name,
)
from awooop.infra.settings import asyncpg_dsn, role_url

_PLATFORM_LOCK = 0x6177_6F6F_6F6D
"""Held by `migrate_platform` for its whole run; distinct from the provisioning and
migration locks it takes inside."""


class SchemaSpec(Protocol):
    """What provisioning needs to know of a service (a `ServiceSpec` is one)."""

    @property
    def service(self) -> str: ...

    @property
    def branches(self) -> Sequence[str]: ...

    @property
    def migrations(self) -> Sequence[Path]: ...

    @property
    def extra_roles(self) -> Sequence[str]: ...


def branch_heads(branches: Sequence[str], extra_locations: Sequence[Path]) -> set[str]:
    """The revision ids at the heads of `branches`, from the migration scripts."""
    scripts = ScriptDirectory.from_config(script_config(extra_locations))
    heads: set[str] = set()
    for branch in branches:
        heads.update(rev.revision for rev in scripts.get_revisions(f"{branch}@head") if rev)
    return heads


async def schema_behind(conn: asyncpg.Connection, spec: SchemaSpec) -> str | None:
    """Why `spec.service`'s schema is not ready for this code, or `None` when it is."""
    wanted = branch_heads(spec.branches, spec.migrations)
    try:
        rows = await conn.fetch(
            f"SELECT version_num FROM {quote_ident(spec.service)}.alembic_version"
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return f"schema {spec.service!r} has no migrations applied"
    missing = wanted - {row["version_num"] for row in rows}
    if missing:
        return f"schema {spec.service!r} lacks revisions {', '.join(sorted(missing))}"
    return None


async def migrate_platform(
    admin_url: str,
    specs: Sequence[SchemaSpec],
    passwords: Mapping[str, str] | None = None,
    role_passwords: Mapping[str, str] | None = None,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    report: Callable[[str], None] = lambda _line: None,
) -> None:
    """Roles, schemas, migrations and inbox partitions of every service in `specs`.

    `passwords` are the service roles' (by service), `role_passwords` the login
    roles' (by role); `report` gets one line per service when it is current.
    """
    passwords = dict(passwords or {})
    lock = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", _PLATFORM_LOCK)
        await provision_services(admin_url, [spec.service for spec in specs], passwords)
        logins = sorted({role for spec in specs for role in spec.extra_roles})
        if logins:
            await provision_login_roles(admin_url, logins, role_passwords)
        for spec in specs:
            url = role_url(admin_url, role_name(spec.service), passwords.get(spec.service))
            await migrate(url, spec.service, spec.branches, spec.migrations)
            if "store" in spec.branches:
                conn = await asyncpg.connect(asyncpg_dsn(url))
                try:
                    await inbox.maintain_partitions(conn, spec.service, now())
                finally:
                    await conn.close()
            heads = sorted(branch_heads(spec.branches, spec.migrations))
            report(f"{spec.service}: current ({', '.join(heads) or 'no migrations'})")
    finally:
        await lock.close()  # closing the session releases the advisory lock

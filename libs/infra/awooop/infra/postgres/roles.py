"""Per-service roles and schemas, created with the admin URL.

Each service gets a login role `awooop_<service>` that owns the schema of
the same name and nothing else: no grants outside it, `statement_timeout`
and `idle_in_transaction_session_timeout` set on the role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import asyncpg

from awooop.infra.settings import asyncpg_dsn

STATEMENT_TIMEOUT = "30s"
IDLE_IN_TRANSACTION_TIMEOUT = "60s"
_PROVISION_LOCK = 0x6177_6F6F_6F70  # "awooop": one provisioner at a time


def quote_ident(name: str) -> str:
    """Double-quote an identifier; names come from the service registry, never from input."""
    return '"' + name.replace('"', '""') + '"'


def role_name(service: str) -> str:
    return f"awooop_{service}"


async def ensure_role(
    conn: asyncpg.Connection, role: str, password: str | None, *, login: bool = True
) -> None:
    """Create `role` when missing (or reset its password) and pin its timeouts."""
    exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    ident = quote_ident(role)
    options = ("LOGIN" if login else "NOLOGIN") + " NOSUPERUSER NOBYPASSRLS NOCREATEDB"
    verb = "ALTER" if exists else "CREATE"
    await conn.execute(f"{verb} ROLE {ident} {options}")
    if password:
        # Utility statements take no parameters; quote the literal server-side.
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"ALTER ROLE {ident} PASSWORD {literal}")
    await conn.execute(f"ALTER ROLE {ident} SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    await conn.execute(
        f"ALTER ROLE {ident} SET idle_in_transaction_session_timeout = "
        f"'{IDLE_IN_TRANSACTION_TIMEOUT}'"
    )


@asynccontextmanager
async def _provisioning(admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An admin connection holding the provisioning lock: one provisioner at a time."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK)
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _PROVISION_LOCK)
    finally:
        await conn.close()


async def provision_login_roles(
    admin_url: str, roles: Iterable[str], passwords: Mapping[str, str] | None = None
) -> None:
    """Create login roles that own nothing (the query API's `awooop_api`)."""
    passwords = passwords or {}
    async with _provisioning(admin_url) as conn:
        for role in roles:
            await ensure_role(conn, role, passwords.get(role))


async def provision_services(
    admin_url: str, services: Iterable[str], passwords: Mapping[str, str] | None = None
) -> None:
    """Create each service's role and schema (idempotent, safe to run concurrently)."""
    passwords = passwords or {}
    async with _provisioning(admin_url) as conn:
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for service in services:
            role = role_name(service)
            await ensure_role(conn, role, passwords.get(service))
            schema, ident = quote_ident(service), quote_ident(role)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {ident}")
            await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {ident}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"ALTER ROLE {ident} SET search_path = {schema}")

"""A throwaway service schema (role, schema, migrations, pool) for one test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from awooop.infra.postgres import inbox
from awooop.infra.postgres.migrate import migrate
from awooop.infra.postgres.pools import create_pool
from awooop.infra.postgres.roles import provision_services, role_name
from awooop.infra.settings import role_url


async def service_schema(
    admin_url: str, name: str, branches: Sequence[str] = ("store",)
) -> asyncpg.Pool:
    """Provision `name` like a service (role `awooop_<name>`), migrate it, return a pool."""
    await provision_services(admin_url, [name])
    url = role_url(admin_url, role_name(name), None)
    await migrate(url, name, branches)
    pool = await create_pool(url, name, max_size=8)
    if "store" in branches:
        async with pool.acquire() as conn:
            await inbox.maintain_partitions(conn, name, dt.datetime.now(dt.UTC))
    return pool

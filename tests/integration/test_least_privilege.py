"""Least privilege on a real Postgres: `awooop migrate` provisions, each service role
reaches only its own schema.

Break caught: a service role granted another service's tables (or `CREATE` on
`public`), and a migrate that fails when run twice or by two operators at once.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from awooop.cli.migrate import service_schemas
from awooop.infra.postgres.provisioning import migrate_platform, schema_behind
from awooop.infra.settings import SERVICES, asyncpg_dsn, role_url
from support.infra import StackUrls

pytestmark = pytest.mark.integration

# A table each service's migrations make in its own schema.
OWN_TABLE = {
    "ingress": "events",
    "runtime": "runs",
    "mcp_gateway": "events",
    "approval": "events",
    "projector": "runs",
}


async def _as(urls: StackUrls, service: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(role_url(urls.database, f"awooop_{service}", None)))


async def test_migrate_twice_and_concurrently_leaves_every_schema_current(
    stack_urls: StackUrls,
) -> None:
    specs = service_schemas()
    lines: list[str] = []
    await migrate_platform(stack_urls.database, specs, report=lines.append)
    assert sorted(line.split(":")[0] for line in lines) == sorted(SERVICES)
    await asyncio.gather(
        migrate_platform(stack_urls.database, specs),
        migrate_platform(stack_urls.database, specs),
    )
    for spec in specs:
        conn = await _as(stack_urls, spec.service)
        try:
            assert await schema_behind(conn, spec) is None
        finally:
            await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_reaches_only_its_own_schema(
    stack_urls: StackUrls, service: str
) -> None:
    await migrate_platform(stack_urls.database, service_schemas())
    conn = await _as(stack_urls, service)
    try:
        await conn.fetch(f'SELECT * FROM "{service}".{OWN_TABLE[service]} LIMIT 0')
        for other in SERVICES:
            if other == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f'SELECT * FROM "{other}".{OWN_TABLE[other]} LIMIT 0')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'CREATE TABLE "{other}".intruder (x int)')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (x int)")
    finally:
        await conn.close()

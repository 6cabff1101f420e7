"""The tenant session against FORCE row-level security, as a role that is neither
superuser, owner nor BYPASSRLS."""

from __future__ import annotations

import asyncpg
import pytest

from awooop.infra.postgres.roles import ensure_role, quote_ident
from awooop.infra.postgres.tenant import (
    TENANT_POLICY_SQL,
    TENANTS_POLICY_SQL,
    InvalidProjectId,
    set_tenant,
    set_tenants,
    tenant_transaction,
)
from awooop.infra.settings import asyncpg_dsn, role_url
from support.infra import StackUrls, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def probe(stack_urls: StackUrls) -> tuple[asyncpg.Pool, str]:
    """A FORCE-RLS probe table owned by one role and read by another (the reader)."""
    schema, owner, reader = unique("rls_"), unique("owner_"), unique("reader_")
    admin = await asyncpg.connect(asyncpg_dsn(stack_urls.database))
    try:
        await ensure_role(admin, owner, None, login=False)
        await ensure_role(admin, reader, None)
        s, o, r = quote_ident(schema), quote_ident(owner), quote_ident(reader)
        await admin.execute(f"CREATE SCHEMA {s} AUTHORIZATION {o}")
        await admin.execute(f"""
            CREATE TABLE {s}.probe (project_id text NOT NULL, note text NOT NULL);
            ALTER TABLE {s}.probe OWNER TO {o};
            ALTER TABLE {s}.probe ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {s}.probe FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant ON {s}.probe
                USING ({TENANT_POLICY_SQL}) WITH CHECK ({TENANT_POLICY_SQL});
            CREATE POLICY tenants ON {s}.probe
                USING ({TENANTS_POLICY_SQL}) WITH CHECK ({TENANTS_POLICY_SQL});
            GRANT USAGE ON SCHEMA {s} TO {r};
            GRANT SELECT, INSERT ON {s}.probe TO {r};
        """)
        # Seed as the owner through its own policy (FORCE filters the owner too).
        await admin.execute(f"SET ROLE {o}")
        for tenant in ("tenant-a", "tenant-b"):
            async with admin.transaction():
                await set_tenant(admin, tenant)
                await admin.execute(
                    f"INSERT INTO {s}.probe VALUES ($1, $2)", tenant, f"row of {tenant}"
                )
        await admin.execute("RESET ROLE")
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        asyncpg_dsn(role_url(stack_urls.database, reader, None)),
        min_size=1,
        max_size=1,  # one connection: every transaction reuses the same session
        server_settings={"search_path": schema},
    )
    yield pool, reader
    await pool.close()


@pytest.fixture
def reader_dsn(stack_urls: StackUrls, probe: tuple[asyncpg.Pool, str]) -> str:
    return asyncpg_dsn(role_url(stack_urls.database, probe[1], None))


async def test_reader_is_an_ordinary_role(probe: tuple[asyncpg.Pool, str]) -> None:
    pool, reader = probe
    row = await pool.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", reader
    )
    assert (row["rolsuper"], row["rolbypassrls"]) == (False, False)
    owner = await pool.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'probe'")
    assert owner != reader


async def test_rows_visible_only_for_the_tenant_of_the_transaction(
    probe: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = probe
    async with tenant_transaction(pool, "tenant-a") as conn:
        assert [r["note"] for r in await conn.fetch("SELECT note FROM probe")] == [
            "row of tenant-a"
        ]
    async with tenant_transaction(pool, "tenant-b") as conn:
        assert [r["note"] for r in await conn.fetch("SELECT note FROM probe")] == [
            "row of tenant-b"
        ]


async def test_no_tenant_sees_nothing_whether_null_or_empty(
    probe: tuple[asyncpg.Pool, str], reader_dsn: str
) -> None:
    pool, _ = probe
    async with pool.acquire() as conn:
        async with conn.transaction():
            await set_tenant(conn, "tenant-a")
        # After a transaction-local setting, the same session reads ''.
        assert await conn.fetchval("SELECT current_setting('app.project_id', true)") == ""
        assert await conn.fetchval("SELECT count(*) FROM probe") == 0
    schema = await pool.fetchval("SELECT current_schema()")
    fresh = await asyncpg.connect(reader_dsn, server_settings={"search_path": schema})
    try:
        assert await fresh.fetchval("SELECT current_setting('app.project_id', true)") is None
        assert await fresh.fetchval("SELECT count(*) FROM probe") == 0
    finally:
        await fresh.close()


async def test_a_write_for_another_tenant_is_refused(probe: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = probe
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(pool, "tenant-a") as conn:
            await conn.execute("INSERT INTO probe VALUES ('tenant-b', 'smuggled')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO probe VALUES ('tenant-a', 'no tenant set')")
    async with tenant_transaction(pool, "tenant-a") as conn:
        await conn.execute("INSERT INTO probe VALUES ('tenant-a', 'own row')")
        assert await conn.fetchval("SELECT count(*) FROM probe") == 2


async def test_tenant_list_for_batch_writers(probe: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = probe
    async with pool.acquire() as conn, conn.transaction():
        await set_tenants(conn, ["tenant-a", "tenant-b"])
        assert await conn.fetchval("SELECT count(*) FROM probe") == 2
        await conn.execute("INSERT INTO probe VALUES ('tenant-b', 'batch row')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO probe VALUES ('tenant-c', 'not in batch')")


def test_malformed_project_ids_never_reach_postgres() -> None:
    import asyncio

    with pytest.raises(InvalidProjectId):
        asyncio.run(set_tenant(None, "Tenant A; DROP"))  # type: ignore[arg-type]

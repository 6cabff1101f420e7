"""Digests of the read models as Postgres holds them, one schema at a time.

Read by an operator command logged in with the admin URL: a superuser reads
past row-level security, so every tenant's rows are digested. Rows stream
through a cursor in one read-only, repeatable-read transaction, so the digest
is of one snapshot however long the tables are.
"""

from __future__ import annotations

import asyncpg

from awooop.projector.domain.checksums import READ_MODEL_TABLES, Checksums

_CHUNK = 10_000


async def schema_checksums(conn: asyncpg.Connection, schema: str) -> Checksums:
    """The digests of every read-model table of `schema` (`READ_MODEL_TABLES`).

    Inside the caller's transaction when there is one (a rebuild digests the live
    schema while it holds its lock); else in a snapshot of its own."""
    if conn.is_in_transaction():
        return await _digest(conn, schema)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _digest(conn, schema)


async def _digest(conn: asyncpg.Connection, schema: str) -> Checksums:
    checksums = Checksums()
    for table, columns in READ_MODEL_TABLES.items():
        query = f'SELECT {", ".join(columns)} FROM "{schema}".{table}'
        async for row in conn.cursor(query, prefetch=_CHUNK):
            checksums.add_row(table, row)
    return checksums


async def row_level_secured_tables(conn: asyncpg.Connection, schema: str) -> set[str]:
    """The tables of `schema` under FORCE row-level security: the tenant-facing models."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity",
        schema,
    )
    return {row["relname"] for row in rows}

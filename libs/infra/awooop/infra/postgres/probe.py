"""The probe a consumer runs before it may call a record poison.

A record that fails alone is dead-lettered only while the database is up,
writable (`transaction_read_only` off, not a standby) and the service's role
can still read and write every table of its schema. Otherwise the failure
says more about the database than about the record, and it is an outage.
"""

from __future__ import annotations

import asyncpg

PROBE_TIMEOUT_SECONDS = 5.0

_PROBE = """
SELECT current_setting('transaction_read_only') AS read_only,
       pg_is_in_recovery() AS in_recovery,
       current_user AS role,
       coalesce($1::text, current_schema()) AS schema,
       has_schema_privilege(coalesce($1::text, current_schema()), 'USAGE') AS schema_usage,
       ARRAY(
         SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = coalesce($1::text, current_schema())
           AND c.relkind IN ('r', 'p')
           AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
                    AND has_table_privilege(c.oid, 'UPDATE')
                    AND has_table_privilege(c.oid, 'DELETE'))
         ORDER BY c.relname
       ) AS denied
"""


async def writable_problem(pool: asyncpg.Pool, schema: str | None = None) -> str | None:
    """Why the database cannot judge a record now, or None when it is fit.

    Runs inside a transaction so `transaction_read_only` reflects what a
    batch transaction would get. Never raises: an unreachable database is
    itself the answer.
    """
    try:
        async with pool.acquire(timeout=PROBE_TIMEOUT_SECONDS) as conn, conn.transaction():
            row = await conn.fetchrow(_PROBE, schema, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as error:
        return f"database unreachable: {error!r}"
    assert row is not None
    if row["read_only"] == "on":
        return "transactions are read-only (transaction_read_only is on)"
    if row["in_recovery"]:
        return "the server is a standby in recovery"
    if not row["schema_usage"]:
        return f"role {row['role']} has no USAGE on schema {row['schema']}"
    if row["denied"]:
        tables = ", ".join(row["denied"])
        return f"role {row['role']} cannot read and write {row['schema']}.{{{tables}}}"
    return None

"""Alembic environment: runs on the connection and schema that `migrate()` hands in."""

from __future__ import annotations

from alembic import context

config = context.config
schema: str = config.attributes["schema"]
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    version_table_schema=schema,
    include_schemas=False,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()

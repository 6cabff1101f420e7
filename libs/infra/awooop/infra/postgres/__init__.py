"""Postgres: roles and schemas, migrations, pools, the tenant session, the event store,
the inbox and the outbox relay. The hot path uses raw asyncpg; SQLAlchemy serves the API."""

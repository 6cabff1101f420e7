"""Ingress's Postgres tables: provider events seen once, and auto-provisioned subjects."""

from pathlib import Path

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic versions folder of the ``ingress`` branch."""

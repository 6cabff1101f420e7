"""Alembic migrations shared by every service schema (one version table per schema)."""

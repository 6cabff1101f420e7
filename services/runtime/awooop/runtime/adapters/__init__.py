"""Postgres access of the runtime."""

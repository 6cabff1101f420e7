"""Postgres access of the approval service."""

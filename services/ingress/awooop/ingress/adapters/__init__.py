"""Ingress's Postgres tables: provider events seen once, and auto-provisioned subjects."""

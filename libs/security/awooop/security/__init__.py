"""Redaction, approval tokens, canonical-JSON hashing and signing."""

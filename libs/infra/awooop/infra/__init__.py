"""Kafka, Postgres, Redis, settings, logging and the embedded development stack."""

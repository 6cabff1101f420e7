"""Registries: topics, error codes and the names of the parties."""

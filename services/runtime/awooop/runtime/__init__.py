"""The runtime service."""

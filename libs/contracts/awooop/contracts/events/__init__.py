"""Event payloads and the registry of their types and upcasters."""

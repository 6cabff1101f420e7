"""Contract families: their JSON Schemas, models, fixtures and the built-in contracts."""

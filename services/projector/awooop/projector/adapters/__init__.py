"""The projector's Postgres side: read-model migrations and the bulk writer."""

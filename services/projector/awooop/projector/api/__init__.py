"""The query API: tenant-scoped reads of the read models behind bearer tokens."""

"""The gateway's I/O: its Postgres tables, its executor's lock and its MCP sessions."""

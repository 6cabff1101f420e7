"""The mcp_gateway service."""

"""The gateway's decisions: pure functions of the catalogue, the request and the MCP answer."""

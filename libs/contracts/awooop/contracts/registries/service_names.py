"""Names of the parties that produce to and consume from topics.

Service names are those of ``awooop run <service>`` and of consumer groups
(``awooop.<service>``); the markers name parties that are not one service.
"""

from __future__ import annotations

INGRESS = "ingress"
RUNTIME = "runtime"
MCP_GATEWAY = "mcp_gateway"
APPROVAL = "approval"
PROJECTOR = "projector"

SERVICES: tuple[str, ...] = (INGRESS, RUNTIME, MCP_GATEWAY, APPROVAL, PROJECTOR)
"""The event-sourced services, each with its own consumer group."""

BRIDGES = "bridges"
"""The Telegram and Slack bridges (and outside producers of inbound records)."""

ANY_CONSUMER = "any_consumer"
"""Whichever consumer isolates a poison record (the DLQ's producer)."""

FIRST_SERVICE = "first_service"
"""The first service to find the epoch topic empty writes the broker epoch."""

EVERY_SERVICE = "every_service"
"""Every service reads the broker epoch."""

OPERATORS = "operators"
"""People reading the DLQ (``awooop dlq``)."""

"""The demo tenant: the project, Telegram user and bot that verbs default to."""

from __future__ import annotations

DEFAULT_PROJECT = "demo"
DEFAULT_USER = "1001"
DEFAULT_BOT = "7000"

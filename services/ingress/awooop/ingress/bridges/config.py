"""What one bridge process is configured with, and the settings it reads from the
environment.

| variable | meaning | default |
|---|---|---|
| `AWOOOP_BRIDGE_HOST` | address the bridge binds | `127.0.0.1` |
| `AWOOOP_BRIDGE_PORT` | port the bridge listens on | `8088` |
| `AWOOOP_BRIDGE_ACK_DEADLINE` | seconds from arrival to the broker's ack; later: 503 | `2.5` |
| `AWOOOP_SECRETS_ROOT` | mounted secrets, a folder per project (`file:`, `k8s:`) | none |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from awooop.contracts.families.channel_binding import TELEGRAM_BOT_ID_PATTERN
from awooop.contracts.records.envelope import PROJECT_ID_PATTERN
from awooop.infra.settings import SettingsError
from awooop.ingress.bridges.framing import MAX_BODY_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_ACK_DEADLINE = 2.5
"""Slack gives up on a request after 3 s; the answer must leave before that."""

_BOT_ID = re.compile(TELEGRAM_BOT_ID_PATTERN)
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)


@dataclass(frozen=True)
class BridgeConfig:
    """One project's bridge: its Telegram bots' secret tokens by bot id and its Slack
    signing secret (resolved values, never printed), the acknowledgement deadline and the
    body limit. A channel with nothing configured has no routes. ``ValueError`` for a
    malformed project id or bot id, or a deadline that is not positive."""

    project_id: str
    telegram_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    ack_deadline: float = DEFAULT_ACK_DEADLINE
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not _PROJECT_ID.fullmatch(self.project_id):
            raise ValueError(f"project id {self.project_id!r} does not match {PROJECT_ID_PATTERN}")
        for bot_id in self.telegram_secrets:
            if not _BOT_ID.fullmatch(bot_id):
                raise ValueError(f"Telegram bot id {bot_id!r} is not a bot's numeric id")
        if not self.ack_deadline > 0:
            raise ValueError("the acknowledgement deadline must be a positive number of seconds")


@dataclass(frozen=True)
class BridgeSettings:
    """The bridge's settings from the environment (see the module's table)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    ack_deadline: float = DEFAULT_ACK_DEADLINE
    secrets_root: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BridgeSettings:
        """Read ``env``; :class:`SettingsError` names a malformed variable."""
        root = env.get("AWOOOP_SECRETS_ROOT")
        return cls(
            host=env.get("AWOOOP_BRIDGE_HOST") or DEFAULT_HOST,
            port=int(_number(env, "AWOOOP_BRIDGE_PORT", DEFAULT_PORT)),
            ack_deadline=_number(env, "AWOOOP_BRIDGE_ACK_DEADLINE", DEFAULT_ACK_DEADLINE),
            secrets_root=Path(root) if root else None,
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text) if isinstance(default, int) else float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value

"""The platform's stand-in for Telegram and Slack: the fake chat API as one more process.

When no real provider is configured (``AWOOOP_TELEGRAM_API_URL`` unset), the platform
starts ``awooop.ingress.fake_chat_api`` and points the outbound delivery at it, so
replies of ``suggest`` and ``active`` tenants land somewhere that records them. Every
tenant bot token in the environment (``AWOOOP_TENANT_<PROJECT>_TELEGRAM_BOT_TOKEN``,
``…_SLACK_BOT_TOKEN``) is one the fake accepts; the demo tenants get generated ones.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

DEMO_TENANT_BOTS = {"DEMO": "7000", "ACME": "7100", "OPS": "7200"}
"""The demo tenants' Telegram bots (deploy/contracts): their tokens are generated."""
_TOKEN_VARIABLE = re.compile(
    r"^AWOOOP_TENANT_(?P<project>[A-Z0-9_]+)_(?P<kind>TELEGRAM|SLACK)_BOT_TOKEN$"
)


def is_bot_token_variable(name: str) -> bool:
    """Whether ``name`` holds a tenant's chat bot token."""
    return _TOKEN_VARIABLE.match(name) is not None


def chat_environment(base: dict[str, str]) -> dict[str, str]:
    """What the platform adds to ``base`` for a fake chat: a generated Telegram bot token
    for each demo tenant that has none (only the ingress process, which delivers, gets
    them)."""
    added = {}
    for project, bot in DEMO_TENANT_BOTS.items():
        variable = f"AWOOOP_TENANT_{project}_TELEGRAM_BOT_TOKEN"
        if not base.get(variable):
            added[variable] = f"{bot}:{secrets.token_urlsafe(27)}"
    return added


def fake_chat_command(env: dict[str, str], port: int) -> list[str]:
    """The fake chat API's command line, accepting every tenant bot token of ``env``."""
    command = [sys.executable, "-m", "awooop.ingress.fake_chat_api", "--port", str(port)]
    for variable, value in sorted(env.items()):
        found = _TOKEN_VARIABLE.match(variable)
        if found and value:
            name = found["project"].lower().replace("_", "-")
            command += [f"--{found['kind'].lower()}-token", f"{name}={value}"]
    return command


def start_fake_chat(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The fake chat API as its own process. It is no service: of the platform's settings
    it gets none but logging (no database URL, password or key); the tokens it accepts
    are on its command line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    own = {
        name: value
        for name, value in env.items()
        if not name.startswith("AWOOOP_") or name in ("AWOOOP_LOG_LEVEL", "AWOOOP_LOG_FORMAT")
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            fake_chat_command(env, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=own,
            start_new_session=True,
        )


def provider_urls(fake_url: str) -> dict[str, str]:
    """The outbound delivery's provider base URLs, pointed at the fake."""
    return {"AWOOOP_TELEGRAM_API_URL": fake_url, "AWOOOP_SLACK_API_URL": f"{fake_url}/api"}


def received(fake_url: str, **filters: str) -> list[dict[str, Any]]:
    """What the fake chat received (``provider``, ``chat``, ``method`` filters)."""
    answer = httpx.get(f"{fake_url}/_fake/received", params=filters, timeout=5.0)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()
    return found

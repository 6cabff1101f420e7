"""The outbound worker's settings, read from the environment by the worker itself.

- ``AWOOOP_TELEGRAM_API_URL``: the Bot API base, called as ``{base}/bot{token}/{method}``
  (default ``https://api.telegram.org``);
- ``AWOOOP_SLACK_API_URL``: the Web API base, called as ``{base}/{method}`` (default
  ``https://slack.com/api``);
- ``AWOOOP_OUTBOUND_TIMEOUT_SECONDS``: the longest one provider call may take (default 10);
- ``AWOOOP_SECRETS_ROOT``: the folder of each project's mounted secrets, read by
  ``file:`` and ``k8s:`` credential references (default: none).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from awooop.infra.settings import SettingsError

TELEGRAM_API_URL = "https://api.telegram.org"
SLACK_API_URL = "https://slack.com/api"
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    """Where the providers' APIs are, how long a call may take, where secrets are mounted."""

    telegram_api_url: str = TELEGRAM_API_URL
    slack_api_url: str = SLACK_API_URL
    timeout_seconds: float = TIMEOUT_SECONDS
    secrets_root: Path | None = None


def outbound_settings(env: Mapping[str, str] | None = None) -> OutboundSettings:
    """The settings in `env` (the process environment by default).

    Raises `SettingsError` naming the variable when a value is malformed.
    """
    env = os.environ if env is None else env
    raw_timeout = env.get("AWOOOP_OUTBOUND_TIMEOUT_SECONDS", "") or str(TIMEOUT_SECONDS)
    try:
        timeout = float(raw_timeout)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise SettingsError(
            f"AWOOOP_OUTBOUND_TIMEOUT_SECONDS={raw_timeout!r}: "
            "expected a positive number of seconds"
        )
    root = env.get("AWOOOP_SECRETS_ROOT", "")
    return OutboundSettings(
        telegram_api_url=_url(env, "AWOOOP_TELEGRAM_API_URL", TELEGRAM_API_URL),
        slack_api_url=_url(env, "AWOOOP_SLACK_API_URL", SLACK_API_URL),
        timeout_seconds=timeout,
        secrets_root=Path(root) if root else None,
    )


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name, "") or default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={value!r}: expected an http:// or https:// URL")
    return value

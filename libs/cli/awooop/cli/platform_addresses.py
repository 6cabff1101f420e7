"""Where a running platform's APIs answer: the addresses `awooop up` records in
`<home>/platform.json`, each overridden by its environment variable.

Reading them needs no more than the file: the verbs that call an API import this, not
the supervisor (`platform`) that writes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_API_PORT = 8700
PLATFORM_FILE = "platform.json"


def recorded_api_url(home: Path) -> str:
    """The API address `awooop up` recorded (or AWOOOP_API_URL)."""
    if url := os.environ.get("AWOOOP_API_URL"):
        return url
    path = home / PLATFORM_FILE
    if path.exists():
        return str(json.loads(path.read_text())["api_url"])
    return f"http://127.0.0.1:{DEFAULT_API_PORT}"


def recorded_approval_url(home: Path) -> str | None:
    """The approval command API's address: AWOOOP_APPROVAL_URL, else what `awooop up`
    recorded in `platform.json`; None when neither says."""
    return _recorded_url(home, "AWOOOP_APPROVAL_URL", "approval_url")


def recorded_runtime_url(home: Path) -> str | None:
    """The runtime command API's address: AWOOOP_RUNTIME_URL, else what `awooop up`
    recorded in `platform.json`; None when neither says."""
    return _recorded_url(home, "AWOOOP_RUNTIME_URL", "runtime_url")


def _recorded_url(home: Path, variable: str, recorded: str) -> str | None:
    if url := os.environ.get(variable):
        return url
    path = home / PLATFORM_FILE
    if path.exists():
        url = json.loads(path.read_text()).get(recorded)
        return str(url) if url else None
    return None

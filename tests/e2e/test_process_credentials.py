"""No service process holds the admin URL, another role's password, the contract
signing key of the approval service or, but ingress, a tenant's chat bot token; the fake
chat API (no service) holds none of them.

Break caught: a supervisor that hands its own environment (the admin URL or the signing
key among it) to every child, or a service whose settings keep the admin URL it was
started with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from awooop.cli.dev_chat import is_bot_token_variable
from awooop.infra.settings import SERVICES, Settings
from awooop.security.signing_keys import generate_ed25519_keys
from support.platform_procs import own_platform

pytestmark = pytest.mark.e2e

PASSWORDS = {f"AWOOOP_DB_PASSWORD_{s.upper()}": f"pw-{s}-secret" for s in SERVICES}
SIGNING_KEY = "AWOOOP_CONTRACT_SIGNING_KEY"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {name.decode(): value.decode(errors="replace") for name, value in pairs}


def test_every_process_holds_only_its_own_credentials(tmp_path: Path) -> None:
    key = generate_ed25519_keys("e2e-contracts").signing_spec
    extra = {**PASSWORDS, "AWOOOP_API_DB_PASSWORD": "pw-api-secret", SIGNING_KEY: key}
    with own_platform(tmp_path / "home", **extra) as running:
        admin_url = running.env["AWOOOP_DATABASE_URL"]
        seen = {name: _environ(p.pid) for name, p in running.platform.processes.items()}
    assert sorted(seen) == sorted([*SERVICES, "api", "fake-chat"])
    fake_chat = seen.pop("fake-chat")
    assert not [k for k in fake_chat if k.startswith("AWOOOP_") and "LOG" not in k]
    assert admin_url not in "\0".join(fake_chat.values())
    for name, env in seen.items():
        tokens = {k for k in env if is_bot_token_variable(k)}
        assert bool(tokens) == (name == "ingress"), (name, tokens)
        assert "AWOOOP_DATABASE_URL" not in env, name
        assert admin_url not in "\0".join(env.values()), name
        own = "AWOOOP_API_DB_PASSWORD" if name == "api" else f"AWOOOP_DB_PASSWORD_{name.upper()}"
        held = {k for k in env if k.startswith("AWOOOP_DB_PASSWORD_") or k.endswith("DB_PASSWORD")}
        assert held == {own}, (name, held)
        assert (SIGNING_KEY in env) == (name == "approval"), name
        if name == "approval":
            assert env[SIGNING_KEY] == key
        else:
            assert key not in "\0".join(env.values()), name
        settings = Settings.from_env(env).without_admin()
        assert settings.database_url is None
        assert settings.postgres_url is not None
        assert "@" not in settings.postgres_url

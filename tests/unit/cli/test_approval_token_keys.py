"""The development approval-token keys: the embedded stack generates the pair in its home,
the launcher hands the signing key to approval processes only, and the gateway's settings
verify what the approval process signs with the ring from the same home."""

from __future__ import annotations

import stat
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from awooop.cli.platform import (
    SERVICES,
    Platform,
    approval_signing_keys,
    service_environment,
)
from awooop.infra.embedded.stack import (
    CONTRACT_SIGNING_KEY_FILE,
    CONTRACT_VERIFYING_KEYS_FILE,
    EmbeddedStack,
)
from awooop.infra.settings import (
    APPROVAL_TOKEN_SIGNING_KEY_FILE,
    APPROVAL_TOKEN_VERIFYING_KEYS_FILE,
    Settings,
)
from awooop.security.approval_tokens import (
    ApprovalGrant,
    ApprovalTokenVerifier,
    mint_approval_token,
)
from awooop.security.signing_keys import SigningKey, generate_ed25519_keys, verifying_spec_of

pytestmark = pytest.mark.unit

TOKEN_KEY = "AWOOOP_APPROVAL_TOKEN_SIGNING_KEY"
CONTRACT_KEY = "AWOOOP_CONTRACT_SIGNING_KEY"
NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
GRANT = ApprovalGrant(
    approval_id=uuid.UUID(int=1),
    project_id="acme",
    run_id="run-1",
    call_id="call-1",
    action_hash="ab" * 32,
    issued_at=NOW,
    expires_at=NOW + timedelta(minutes=10),
)


def _secrets_of(home: Path) -> EmbeddedStack:
    stack = EmbeddedStack(home, env={}, say=lambda _line: None)
    home.mkdir(parents=True, exist_ok=True)
    stack._ensure_secrets()
    return stack


def _verifies(signing_spec: str, env: dict[str, str]) -> bool:
    """Whether a service started with `env` accepts a token signed with `signing_spec`."""
    ring = Settings.from_env(env).approval_token_ring()
    token = mint_approval_token(SigningKey.from_spec(signing_spec), GRANT)
    return ApprovalTokenVerifier(ring).verify(token, now=NOW).call_id == "call-1"


def test_a_fresh_home_gets_an_ed25519_approval_key_pair(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _secrets_of(home)
    signing = home / APPROVAL_TOKEN_SIGNING_KEY_FILE
    ring = home / APPROVAL_TOKEN_VERIFYING_KEYS_FILE
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    spec = signing.read_text().strip()
    key = SigningKey.from_spec(spec)
    assert (key.kid, key.alg) == ("dev-approvals", "EdDSA")
    assert ring.read_text().strip() == verifying_spec_of(spec)
    assert spec.rsplit(":", 1)[1] not in ring.read_text()
    # Its own key: the contract signing key never signs approval tokens.
    assert (home / CONTRACT_SIGNING_KEY_FILE).read_text().strip() != spec
    assert _verifies(spec, {"AWOOOP_HOME": str(home)})


def test_the_keys_survive_another_start_and_a_lost_ring_is_derived_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _secrets_of(home)
    files = [
        APPROVAL_TOKEN_SIGNING_KEY_FILE,
        APPROVAL_TOKEN_VERIFYING_KEYS_FILE,
        CONTRACT_SIGNING_KEY_FILE,
        CONTRACT_VERIFYING_KEYS_FILE,
    ]
    first = {name: (home / name).read_text() for name in files}
    _secrets_of(home)
    assert {name: (home / name).read_text() for name in files} == first
    (home / APPROVAL_TOKEN_VERIFYING_KEYS_FILE).unlink()
    _secrets_of(home)
    assert (home / APPROVAL_TOKEN_VERIFYING_KEYS_FILE).read_text() == (
        first[APPROVAL_TOKEN_VERIFYING_KEYS_FILE]
    )


def test_a_home_made_before_approvals_gains_the_pair_and_keeps_its_contract_key(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    contract = generate_ed25519_keys("dev-contracts")
    (home / CONTRACT_SIGNING_KEY_FILE).write_text(contract.signing_spec)
    (home / CONTRACT_VERIFYING_KEYS_FILE).write_text(contract.verifying_spec)
    _secrets_of(home)
    assert (home / CONTRACT_SIGNING_KEY_FILE).read_text() == contract.signing_spec
    assert (home / APPROVAL_TOKEN_SIGNING_KEY_FILE).exists()
    assert _verifies(
        (home / APPROVAL_TOKEN_SIGNING_KEY_FILE).read_text().strip(), {"AWOOOP_HOME": str(home)}
    )


@pytest.mark.parametrize("service", [*SERVICES, "api"])
def test_only_the_approval_process_keeps_the_token_signing_key(service: str) -> None:
    signing = generate_ed25519_keys("prod-approvals")
    env = {
        TOKEN_KEY: signing.signing_spec,
        "AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS": signing.verifying_spec,
        "AWOOOP_HOME": "/srv/awooop",
    }
    kept = service_environment(env, service)
    assert (TOKEN_KEY in kept) == (service == "approval")
    if service != "approval":
        assert signing.signing_spec.rsplit(":", 1)[1] not in "\0".join(kept.values())
    # The public ring is for everyone: the gateway verifies with it.
    assert kept["AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS"] == signing.verifying_spec


def test_the_approval_process_gets_the_homes_keys_unless_the_environment_has_its_own(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    _secrets_of(home)
    from_home = approval_signing_keys({}, home)
    assert from_home == {
        CONTRACT_KEY: (home / CONTRACT_SIGNING_KEY_FILE).read_text().strip(),
        TOKEN_KEY: (home / APPROVAL_TOKEN_SIGNING_KEY_FILE).read_text().strip(),
    }
    own = generate_ed25519_keys("prod-approvals").signing_spec
    assert approval_signing_keys({TOKEN_KEY: own}, home) == {CONTRACT_KEY: from_home[CONTRACT_KEY]}
    assert approval_signing_keys({}, tmp_path / "no-home") == {}


class RecordedProcess:
    """Stands in for `subprocess.Popen`: keeps the environment a process was given."""

    started: dict[str, dict[str, str]] = {}

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        self.started[args[-1] + ":" + str(len(self.started))] = dict(kwargs["env"])


def test_every_approval_process_and_no_other_gets_the_keys_also_when_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    _secrets_of(home)
    monkeypatch.setattr(subprocess, "Popen", RecordedProcess)
    monkeypatch.setattr(RecordedProcess, "started", {})
    platform = Platform(logs=home / "logs", approval_api_port=7311)
    platform.approval_keys = approval_signing_keys({}, home)
    base = {"AWOOOP_HOME": str(home)}
    for name in SERVICES:
        platform.start(name, base)
    platform.start("approval", base)  # restarted after a crash
    platform.start("approval-2", base, service="approval")
    platform.start("api", base)
    started = RecordedProcess.started
    signing = (home / APPROVAL_TOKEN_SIGNING_KEY_FILE).read_text().strip()
    approvals = [name for name in started if name.startswith("approval:")]
    assert len(approvals) == 3
    for name, env in started.items():
        assert (env.get(TOKEN_KEY) == signing) == (name in approvals), name
        assert (CONTRACT_KEY in env) == (name in approvals), name
    ports = [env.get("AWOOOP_APPROVAL_API_PORT") for name, env in started.items()]
    assert ports.count("7311") == 2  # the process called `approval`, first and restarted
    # The gateway holds no signing key, yet verifies what the approval process signs.
    gateway = next(env for name, env in started.items() if name.startswith("mcp_gateway:"))
    assert _verifies(signing, gateway)
    assert signing not in repr(platform)

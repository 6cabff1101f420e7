"""Supervising the platform's processes: five services and the query API, each its own
process (`awooop run <name>`), as they would run in separate pods.

The supervisor runs `awooop migrate` once with the admin URL, then starts each
process with only its own credentials: no admin URL, no other role's password, and
the contract and approval-token signing keys for the approval process alone (every
process reads the verifying rings from the home). The approval process also
serves the contract command API on a port of its own, and the runtime its run and
budget command API on another; `platform.json` records their addresses
(`approval_url`, `runtime_url`) next to the query API's (`api_url`). Without a real
chat provider configured, a fake chat API stands in for Telegram and Slack
(`dev_chat`), and `platform.json` records it as `fake_chat_url`. The verbs that call
those APIs read the addresses back with `platform_addresses`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from awooop.cli import dev_chat
from awooop.cli.platform_addresses import DEFAULT_API_PORT, PLATFORM_FILE
from awooop.infra.embedded.processes import free_port, port_open
from awooop.infra.embedded.stack import CONTRACT_SIGNING_KEY_FILE
from awooop.infra.settings import APPROVAL_TOKEN_SIGNING_KEY_FILE, without_credentials

SERVICES = ("ingress", "runtime", "mcp_gateway", "approval", "projector")
SIGNING_KEY_VAR = "AWOOOP_CONTRACT_SIGNING_KEY"
"""The contract signing key: only the approval process, which publishes, receives it."""
APPROVAL_TOKEN_KEY_VAR = "AWOOOP_APPROVAL_TOKEN_SIGNING_KEY"  # noqa: S105 (a variable name)
"""The approval-token signing key: only the approval process, which grants, receives it;
the gateway verifies tokens with the public ring and can never mint one."""
APPROVAL_ONLY_VARS = (SIGNING_KEY_VAR, APPROVAL_TOKEN_KEY_VAR)


class PlatformError(RuntimeError):
    """A process of the platform failed to start or to become ready; says which and why."""


@dataclass
class Platform:
    """The running processes, their health ports and the API's address."""

    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    health_ports: dict[str, int] = field(default_factory=dict)
    api_url: str = ""
    approval_url: str = ""
    runtime_url: str = ""
    fake_chat_url: str = ""
    runtime_api_port: int | None = None
    """The port of the runtime command API, served by the process called `runtime` (when
    it is restarted too); another runtime process of the same platform serves none."""
    approval_api_port: int | None = None
    """The port of the approval command API, served by the process called `approval`
    (when it is restarted too); another approval process of the same platform serves none."""
    approval_keys: dict[str, str] = field(default_factory=dict, repr=False)
    """The signing keys every approval process gets, a restarted one too
    (`approval_signing_keys`); no other process ever does."""

    def start(self, name: str, env: dict[str, str], service: str | None = None) -> None:
        """Start `awooop run <service>` (default: `name`) as the process called `name`."""
        self.logs.mkdir(parents=True, exist_ok=True)
        if name == "runtime" and self.runtime_api_port is not None:
            env = {**env, "AWOOOP_RUNTIME_API_PORT": str(self.runtime_api_port)}
        if name == "approval" and self.approval_api_port is not None:
            env = {**env, "AWOOOP_APPROVAL_API_PORT": str(self.approval_api_port)}
        if (service or name) == "approval":
            env = {**env, **self.approval_keys}
        with (self.logs / f"{name}.log").open("ab") as out:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "awooop.cli.main", "run", service or name],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=service_environment(env, service or name),
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops in order
            )

    def tail(self, name: str, lines: int = 12) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n  ".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise PlatformError(
                    f"{name} exited with {process.returncode}:\n  {self.tail(name)}"
                )

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every process, then SIGKILL what is left after `grace` seconds."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def service_environment(env: dict[str, str], service: str) -> dict[str, str]:
    """`env` as one service process (or `api`) gets it: Postgres's location instead of
    the admin URL, of the role passwords only its own, the contract and approval-token
    signing keys only for the approval service, and tenants' chat bot tokens only for
    ingress (which delivers their messages)."""
    own = "AWOOOP_API_DB_PASSWORD" if service == "api" else f"AWOOOP_DB_PASSWORD_{service.upper()}"
    kept = {
        name: value
        for name, value in env.items()
        if name != "AWOOOP_DATABASE_URL"
        and not (name.startswith("AWOOOP_DB_PASSWORD_") and name != own)
        and not (name == "AWOOOP_API_DB_PASSWORD" and name != own)
        and not (name in APPROVAL_ONLY_VARS and service != "approval")
        and not (dev_chat.is_bot_token_variable(name) and service != "ingress")
    }
    if (admin := env.get("AWOOOP_DATABASE_URL")) and "AWOOOP_POSTGRES_URL" not in kept:
        kept["AWOOOP_POSTGRES_URL"] = without_credentials(admin)
    return kept


def migrate_schemas(env: dict[str, str]) -> None:
    """Run `awooop migrate` with `env` (which holds the admin URL); `PlatformError` on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "awooop.cli.main", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PlatformError(f"awooop migrate failed: {done.stderr.strip() or done.stdout.strip()}")


def start_platform(stack_env: dict[str, str], home: Path, api_port: int | None = None) -> Platform:
    """Migrate, then start every service and the API with `stack_env` (the infrastructure
    URLs, the admin URL among them: only `awooop migrate` gets that one)."""
    platform = Platform(logs=home / "logs")
    base = {**os.environ, **stack_env}
    migrate_schemas(base)
    api = api_port or int(os.environ.get("AWOOOP_API_PORT", DEFAULT_API_PORT))
    approval = int(base.get("AWOOOP_APPROVAL_API_PORT") or free_port(avoid={api}))
    runtime = int(base.get("AWOOOP_RUNTIME_API_PORT") or free_port(avoid={api, approval}))
    platform.runtime_api_port = runtime
    platform.approval_api_port = approval
    platform.approval_keys = approval_signing_keys(base, home)
    platform.runtime_url = f"http://127.0.0.1:{runtime}"
    if not base.get("AWOOOP_TELEGRAM_API_URL"):
        base.update(dev_chat.chat_environment(base))
        port = free_port(avoid={api, approval, runtime})
        platform.processes["fake-chat"] = dev_chat.start_fake_chat(
            base, port, platform.logs / "fake-chat.log"
        )
        platform.fake_chat_url = f"http://127.0.0.1:{port}"
        base.update(dev_chat.provider_urls(platform.fake_chat_url))
    for name in SERVICES:
        # Nothing binds a port until its process starts: never hand one out twice.
        taken = {api, approval, runtime, *platform.health_ports.values()}
        port = free_port(avoid=taken | _port_of(platform.fake_chat_url))
        platform.health_ports[name] = port
        platform.start(name, {**base, "AWOOOP_HEALTH_PORT": str(port)})
    platform.approval_url = f"http://127.0.0.1:{approval}"
    port = api
    if port_open(port):
        port = free_port(avoid={approval, runtime, *platform.health_ports.values()})
    platform.api_url = f"http://127.0.0.1:{port}"
    platform.start("api", {**base, "AWOOOP_API_PORT": str(port)})
    recorded = {
        "api_url": platform.api_url,
        "approval_url": platform.approval_url,
        "runtime_url": platform.runtime_url,
        "fake_chat_url": platform.fake_chat_url,
    }
    (home / PLATFORM_FILE).write_text(json.dumps(recorded))
    return platform


def _port_of(url: str) -> set[int]:
    return {int(url.rsplit(":", 1)[1])} if url else set()


def approval_signing_keys(base: dict[str, str], home: Path) -> dict[str, str]:
    """The signing keys an approval process needs and `base` lacks: the contract signing
    key and the approval-token signing key the embedded stack generated in `home` (a key
    in the environment wins, and reaches the process through `base` itself)."""
    extra = {}
    for var, file in (
        (SIGNING_KEY_VAR, CONTRACT_SIGNING_KEY_FILE),
        (APPROVAL_TOKEN_KEY_VAR, APPROVAL_TOKEN_SIGNING_KEY_FILE),
    ):
        path = home / file
        if not base.get(var) and path.exists():
            extra[var] = path.read_text().strip()
    return extra


def wait_ready(platform: Platform, timeout: float = 90.0) -> None:
    """Block until every service's /readyz and the API's /v1/healthz answer 200."""
    pending = {
        name: f"http://127.0.0.1:{port}/readyz" for name, port in platform.health_ports.items()
    }
    pending["api"] = f"{platform.api_url}/v1/healthz"
    if platform.approval_url and "approval" in platform.processes:
        pending["approval-api"] = f"{platform.approval_url}/openapi.json"
    if platform.runtime_url and "runtime" in platform.processes:
        pending["runtime-api"] = f"{platform.runtime_url}/openapi.json"
    if platform.fake_chat_url:
        pending["fake-chat"] = f"{platform.fake_chat_url}/_fake/received"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while pending:
            platform.check_alive()
            for name, url in list(pending.items()):
                try:
                    if client.get(url).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    continue
            if time.monotonic() > deadline:
                raise PlatformError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(0.2)

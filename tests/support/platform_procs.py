"""The whole platform as separate processes on a private embedded stack, for e2e and
fault tests that send real messages, kill processes and read the query API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from awooop.cli.platform import SERVICES, Platform, start_platform, wait_ready
from awooop.infra.embedded.postgres import tcp_url
from awooop.infra.embedded.processes import free_port
from awooop.infra.settings import without_credentials
from awooop.security.api_tokens import mint_api_token
from support.own_stack import OwnStack

DEMO_TENANTS = Path(__file__).resolve().parents[2] / "deploy" / "contracts"
"""The demo tenants' contract files, one folder per tenant."""


class RunningPlatform:
    def __init__(self, stack: OwnStack, platform: Platform, env: dict[str, str]) -> None:
        self.stack = stack
        self.platform = platform
        self.env = env

    @property
    def home(self) -> Path:
        return Path(self.env["AWOOOP_HOME"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real `awooop` command against this platform."""
        result = subprocess.run(
            [sys.executable, "-m", "awooop.cli.main", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"awooop {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def start(self, name: str, service: str | None = None, **extra_env: str) -> None:
        """Start (or restart) one process; services get a health port of their own."""
        api = int(self.platform.api_url.rsplit(":", 1)[1])
        port = free_port(avoid={api, *self.platform.health_ports.values()})
        if (service or name) != "api":
            self.platform.health_ports[name] = port
        self.platform.start(
            name, {**os.environ, **self.env, "AWOOOP_HEALTH_PORT": str(port), **extra_env}, service
        )

    def signal(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Send `signum` to a process and wait for it to exit; returns its exit code."""
        process = self.platform.processes[name]
        if process.poll() is None:
            process.send_signal(signum)
        return process.wait(30)

    def forget(self, name: str) -> None:
        self.platform.processes.pop(name, None)
        self.platform.health_ports.pop(name, None)

    def onboard(self, *tenants: str) -> None:
        """Onboard folders of `deploy/contracts` (e.g. `demo`) through the approval API, and
        return once every reading service decides by them."""
        self.cli("contracts", "onboard", *(str(DEMO_TENANTS / tenant) for tenant in tenants))

    def onboard_like_demo(self, project: str, bot: str) -> None:
        """Onboard `project` with the demo agent and tool and a binding of every chat of
        `bot`, as contract files an operator would apply."""
        folder = self.home / "tenants" / project
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("agent.yaml", "tool-status.yaml", "channel-binding-telegram-7000.yaml"):
            document = yaml.safe_load((DEMO_TENANTS / "demo" / name).read_text())
            document["project"] = project
            if document["body"]["family"] == "channel_binding":
                document["body"]["channel"]["bot_id"] = bot
            (folder / name).write_text(yaml.safe_dump(document))
        self.cli("contracts", "onboard", str(folder))

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_ready(self.platform, timeout)

    def api(self, *projects: str) -> httpx.Client:
        secret = (self.home / "api-jwt.secret").read_text().strip()
        token = mint_api_token(secret, subject="test", projects=projects, roles=["viewer"])
        return httpx.Client(
            base_url=self.platform.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )

    def wait_for_runs(
        self,
        project: str,
        count: int,
        *,
        states: tuple[str, ...] = ("completed",),
        within: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Poll the API until `count` runs of `project` are in one of `states`."""
        deadline = time.monotonic() + within
        with self.api(project) as client:
            while True:
                runs = client.get("/v1/runs", params={"limit": 200}).json()["runs"]
                done = [r for r in runs if r["state"] in states]
                if len(done) >= count:
                    return done
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{len(done)} of {count} runs of {project} finished; "
                        f"states {[r['state'] for r in runs]}; logs in {self.platform.logs}"
                    )
                self.platform.check_alive()
                time.sleep(0.25)


def process_environ(pid: int) -> dict[str, str]:
    """The environment process `pid` was started with, as the kernel keeps it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)
    return {name.decode(): value.decode(errors="replace") for name, value in pairs}


@contextmanager
def own_platform(
    home: Path,
    *,
    tenants: tuple[str, ...] = (),
    stack_env: dict[str, str] | None = None,
    postgres_over_tcp: bool = False,
    **extra_env: str,
) -> Iterator[RunningPlatform]:
    """Stack, five services and the API; `extra_env` reaches every process, `stack_env`
    the embedded stack (its `AWOOOP_EMBEDDED_*` options). Each of `tenants` (a folder of
    `deploy/contracts`, e.g. `demo`) is onboarded through the approval API, and the
    platform is yielded once every service decides by it. `postgres_over_tcp` points the
    processes at the server's TCP port instead of its Unix socket, for a test that tells
    backends apart by their client port."""
    stack = OwnStack(home, stack_env)
    stack.stack.up()
    env = {**stack.stack.urls(), "AWOOOP_HOME": str(home), **extra_env}
    if postgres_over_tcp:
        port = stack.stack.recorded()["postgres"].port
        env["AWOOOP_POSTGRES_URL"] = without_credentials(tcp_url(port))
    # A port of its own: two platforms at once (tests, a bench, a developer's
    # `awooop up`) must never answer each other's readiness checks.
    platform = start_platform(env, home, api_port=free_port())
    running = RunningPlatform(stack, platform, env)
    try:
        wait_ready(platform)
        if tenants:
            running.onboard(*tenants)
        yield running
    finally:
        platform.stop()
        stack.stack.purge()


__all__ = ["SERVICES", "RunningPlatform", "own_platform", "process_environ"]

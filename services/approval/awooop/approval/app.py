"""The approval process: its event store and relay, and the contract command API.

The command API (`AWOOOP_APPROVAL_API_PORT`) runs as a supervised background job of the
runner, over the runner's pool; each command that appended wakes the relay. Without a
port the API is not served; without `AWOOOP_CONTRACT_SIGNING_KEY` it refuses to start.
The approval flow (gate 5) comes with its own consumer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from awooop.approval.api.app import create_api
from awooop.contracts.registries.service_names import APPROVAL
from awooop.infra.http_server import embedded_server
from awooop.infra.logging import get_logger
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.infra.settings import SettingsError
from awooop.security.signing_keys import InvalidKey, SigningKey

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"

log = get_logger(__name__)


def _pool(runner: ServiceRunner) -> asyncpg.Pool:
    assert runner.pool is not None  # background jobs start after the pool
    return runner.pool


def _wake(runner: ServiceRunner) -> None:
    if runner.relay is not None:
        runner.relay.wake()


async def serve_commands(runner: ServiceRunner) -> None:
    """Serve the command API until cancelled; a job that ends counts as a crash."""
    settings = runner.settings
    port = settings.approval_api_port
    if port is None:
        log.info("approval_api_not_served", reason="AWOOOP_APPROVAL_API_PORT is not set")
        await asyncio.Event().wait()
        return
    if not settings.contract_signing_key:
        raise SettingsError("the approval API needs AWOOOP_CONTRACT_SIGNING_KEY to publish")
    if not settings.api_jwt_secret:
        raise SettingsError("the approval API needs AWOOOP_API_JWT_SECRET to verify tokens")
    try:
        key = SigningKey.from_spec(settings.contract_signing_key)
    except InvalidKey as invalid:
        raise SettingsError(f"AWOOOP_CONTRACT_SIGNING_KEY: {invalid}") from None
    app = create_api(
        lambda: _pool(runner),
        jwt_secret=settings.api_jwt_secret,
        signing_key=key,
        wake=lambda: _wake(runner),
        signatures=settings.contract_required_signatures,
    )
    server = embedded_server(app, settings.approval_api_host, port)
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise
    except SystemExit:  # uvicorn exits when it cannot bind its port
        msg = f"the approval API could not listen on port {port}"
        raise RuntimeError(msg) from None


def spec() -> ServiceSpec:
    """The approval service: the event store branch, its own tables, the command API."""
    return ServiceSpec(
        service=APPROVAL,
        topics=(),
        processor=None,
        branches=("store", "approval"),
        migrations=[MIGRATIONS],
        background=[serve_commands],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

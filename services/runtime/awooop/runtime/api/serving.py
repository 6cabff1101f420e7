"""The command API as a supervised background job of the runtime process.

Served on `AWOOOP_RUNTIME_API_PORT` over the runner's pool (whatever pool the runner
holds at the time of each request: a runner restarted after a broker recovery gets a
new one); each command that appended wakes the runner's relay. Without a port the API
is not served; without `AWOOOP_API_JWT_SECRET` the job refuses to start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import asyncpg

from awooop.infra.http_server import embedded_server
from awooop.infra.logging import get_logger
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import SettingsError
from awooop.runtime.api.app import create_api

log = get_logger(__name__)


def _pool(runner: ServiceRunner) -> asyncpg.Pool:
    assert runner.pool is not None  # background jobs start after the pool
    return runner.pool


def _wake(runner: ServiceRunner) -> None:
    if runner.relay is not None:
        runner.relay.wake()


def command_api(
    clock: Callable[[], dt.datetime], service: str
) -> Callable[[ServiceRunner], Awaitable[None]]:
    """The background job serving the command API with `clock` and as `service`."""

    async def serve_commands(runner: ServiceRunner) -> None:
        """Serve until cancelled; a job that ends counts as a crash."""
        settings = runner.settings
        port = settings.runtime_api_port
        if port is None:
            log.info("runtime_api_not_served", reason="AWOOOP_RUNTIME_API_PORT is not set")
            await asyncio.Event().wait()
            return
        if not settings.api_jwt_secret:
            raise SettingsError("the runtime API needs AWOOOP_API_JWT_SECRET to verify tokens")
        app = create_api(
            lambda: _pool(runner),
            jwt_secret=settings.api_jwt_secret,
            clock=clock,
            service=service,
            wake=lambda: _wake(runner),
        )
        server = embedded_server(app, settings.runtime_api_host, port)
        serving = asyncio.ensure_future(server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            await serving
            raise
        except SystemExit:  # uvicorn exits when it cannot bind its port
            raise RuntimeError(f"the runtime API could not listen on port {port}") from None

    return serve_commands

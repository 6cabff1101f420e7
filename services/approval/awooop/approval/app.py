"""The approval process: its event store and relay, the approval flow's consumer, the
expiry of pending requests, and the API (contract commands and votes).

The consumer (`processor.ApprovalProcessor`) reads held calls from the gateway, runs from
the runtime and button presses from ingress. The API (`AWOOOP_APPROVAL_API_PORT`) and the
expiry run as supervised background jobs of the runner, over the runner's pool; each
command or decision that appended wakes the relay. Without a port the API is not
served; without `AWOOOP_CONTRACT_SIGNING_KEY` it refuses to start. Without
`AWOOOP_APPROVAL_TOKEN_SIGNING_KEY` the process refuses to start: it could not grant.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg

from awooop.approval.adapters.approval_decisions import expire_due
from awooop.approval.api.app import create_api
from awooop.approval.processor import ApprovalProcessor
from awooop.approval.recording import KeyMinter
from awooop.approval.schema import SCHEMA
from awooop.contracts.registries.service_names import APPROVAL
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.http_server import embedded_server
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import is_database_outage
from awooop.infra.runner import ServiceRunner, ServiceSpec
from awooop.infra.service_main import run
from awooop.infra.settings import Settings, SettingsError
from awooop.security.signing_keys import InvalidKey, SigningKey

log = get_logger(__name__)


def _pool(runner: ServiceRunner) -> asyncpg.Pool:
    assert runner.pool is not None  # background jobs start after the pool
    return runner.pool


def _wake(runner: ServiceRunner) -> None:
    if runner.relay is not None:
        runner.relay.wake()


def token_minter(settings: Settings) -> KeyMinter:
    """The signer of grants' tokens from settings; `SettingsError` when it has none."""
    spec = settings.approval_token_signing_key
    if not spec:
        raise SettingsError(
            "the approval service needs AWOOOP_APPROVAL_TOKEN_SIGNING_KEY to grant approvals"
        )
    try:
        key = SigningKey.from_spec(spec)
    except InvalidKey as invalid:
        raise SettingsError(f"AWOOOP_APPROVAL_TOKEN_SIGNING_KEY: {invalid}") from None
    return KeyMinter(key, dt.timedelta(seconds=settings.approval_token_ttl_seconds))


async def expire_requests(runner: ServiceRunner) -> None:
    """Deny pending requests past their expiry, every `approval_expiry_check_seconds`;
    an outage is waited out, never a crash."""
    every = runner.settings.approval_expiry_check_seconds
    while True:
        await asyncio.sleep(every)
        try:
            while await expire_due(_pool(runner)):
                _wake(runner)
        except Exception as error:
            if not is_database_outage(error):
                raise
            log.warning("approval_expiry_outage", error=repr(error))


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
        mint=token_minter(settings),
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
    """The approval service: its consumer over held calls, runs and button presses, its
    own tables, the API and the expiry of requests; policies read from the contracts."""

    def processor(runner: ServiceRunner | None) -> ApprovalProcessor:
        settings = runner.settings if runner is not None else Settings.from_env()
        return ApprovalProcessor(
            contracts=contracts_of(runner), mint=token_minter(settings), service=APPROVAL
        )

    return ServiceSpec(
        service=APPROVAL,
        topics=(
            Topics.GATEWAY_EVENTS.name,
            Topics.RUN_EVENTS.name,
            Topics.INGRESS_EVENTS.name,
        ),
        processor=processor,
        branches=SCHEMA.branches,
        reads_contracts=True,
        # People decide here: a quarter second more per hop is nothing to them, and the
        # service reads three whole topics for the few held calls and presses in them.
        patient_fetch=True,
        migrations=SCHEMA.migrations,
        background=[serve_commands, expire_requests],
    )


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()

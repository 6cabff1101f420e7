"""`awooop recover broker-reset`: the platform back on a new, empty broker.

A broker loss leaves every event store and read model in Postgres and nothing
in Kafka; the services notice the new broker epoch, halt (`E-BROKER-RESET`)
and wait. This operator command (the admin URL; no service holds it) brings
them back, each step safe to run again after a failure:

1. the registry topics, created with their configs and verified (a topic that
   a client auto-created on the new broker with the wrong partition count is
   named, never silently used);
2. the new broker's epoch (written to `awooop.broker.epoch.v1` when empty);
3. per write-side schema, one transaction under that schema's relay lock: the
   outbox refilled with every event in position order (rows parked as
   unpublishable stay parked) and the new epoch recorded. A schema already on
   this epoch is not refilled again;
4. each refilled outbox published to the new broker, in order, by the relay's
   own code (the service's relay, once it resumes, takes turns with it on the
   same lock), until it is empty;
5. the read models rebuilt from the refilled topics (`Rebuild` with the new
   epoch: read to the high watermarks, swapped in with the epoch).

Each halted service sees the epoch in its schema within
`AWOOOP_EPOCH_CHECK_SECONDS` and restarts itself in place: consumers start
again from offset 0 of the refilled topics, and their inboxes absorb what they
applied before the loss; side effects stay guarded by their own ids.

Exit codes: 0 recovered (or nothing to recover); 2 a refusal or an outage, in
one line: run the command again once its cause is fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from rich.console import Console

from awooop.cli.migrate import service_specs
from awooop.cli.projector import RebuildDisplay
from awooop.infra.kafka import admin as topic_admin
from awooop.infra.kafka.epoch import read_broker_epoch
from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres.provisioning import schema_behind
from awooop.infra.postgres.roles import role_name
from awooop.infra.relay import OutboxRelay, relay_lock_key
from awooop.infra.runner import ServiceSpec
from awooop.infra.settings import KafkaSettings, Settings, asyncpg_dsn
from awooop.projector.rebuild import LIVE_SCHEMA, Rebuild, RebuildError, RebuildProgress

DRAIN_SECONDS = 600.0
"""How long one schema's outbox may take to reach the new broker before the command
gives up (and can be run again)."""

_REFILL = """
    INSERT INTO outbox (position)
    SELECT e.position FROM events e
    WHERE NOT EXISTS (SELECT 1 FROM outbox_parked p WHERE p.position = e.position)
    ON CONFLICT DO NOTHING
"""
_RECORD_EPOCH = """
    INSERT INTO broker_epoch (singleton, epoch) VALUES (true, $1)
    ON CONFLICT (singleton) DO UPDATE SET epoch = excluded.epoch, recorded_at = now()
"""


class RecoverError(RuntimeError):
    """A recovery that cannot go on; the message says why in one line."""


@dataclass
class SchemaRecovery:
    """What recovery did to one write-side schema."""

    schema: str
    refilled: int | None = None
    """Events put back in the outbox; None when the schema was on the new epoch already."""
    published: int = 0


@dataclass
class RecoveryReport:
    epoch: str
    schemas: list[SchemaRecovery] = field(default_factory=list)
    rebuilt_records: int | None = None
    """Records the rebuild read; None when the read models were on the new epoch already."""
    rebuilt_events_per_second: float = 0.0
    old_read_models: str | None = None

    def lines(self) -> list[str]:
        said = [f"broker epoch {self.epoch}; registry topics present"]
        for s in self.schemas:
            if s.refilled is None:
                said.append(f"{s.schema}: on this epoch already; {s.published} events published")
            else:
                said.append(
                    f"{s.schema}: outbox refilled with {s.refilled} events, {s.published} published"
                )
        if self.rebuilt_records is None:
            said.append(f"{LIVE_SCHEMA}: read models on this epoch already")
        else:
            said.append(
                f"{LIVE_SCHEMA}: read models rebuilt from {self.rebuilt_records} records "
                f"({self.rebuilt_events_per_second:,.0f} events/s); "
                f"the previous ones are kept as {self.old_read_models}"
            )
        said.append("halted services resume on their own within AWOOOP_EPOCH_CHECK_SECONDS")
        return said


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    recover = verbs.add_parser("recover", help="bring the platform back after a fault")
    which = recover.add_subparsers(dest="what", required=True, metavar="broker-reset")
    reset = which.add_parser(
        "broker-reset",
        help="after a broker loss: topics, outboxes refilled, new epoch, read models rebuilt",
    )
    reset.add_argument("--quiet", action="store_true", help="no progress display")
    reset.set_defaults(handler=run_broker_reset)


def write_side_specs() -> list[ServiceSpec]:
    """The services that keep an event store and an outbox."""
    return [spec for spec in service_specs() if "store" in spec.branches]


def read_side_spec() -> ServiceSpec:
    return next(spec for spec in service_specs() if spec.service == LIVE_SCHEMA)


async def recorded_epochs(conn: asyncpg.Connection) -> dict[str, str | None]:
    """Each service schema's recorded broker epoch (None: no schema or none recorded)."""
    epochs: dict[str, str | None] = {}
    for spec in service_specs():
        if await conn.fetchval("SELECT to_regclass($1) IS NULL", f"{spec.service}.broker_epoch"):
            epochs[spec.service] = None
            continue
        epochs[spec.service] = await conn.fetchval(
            f'SELECT epoch FROM "{spec.service}".broker_epoch'
        )
    return epochs


async def recovery_due(settings: Settings) -> bool:
    """True when some schema records an epoch the broker does not hold (a broker loss)."""
    assert settings.kafka is not None
    conn = await _connect(settings.admin_url)
    try:
        recorded = {e for e in (await recorded_epochs(conn)).values() if e is not None}
    finally:
        await conn.close()
    if not recorded:
        return False
    broker = await read_broker_epoch(settings.kafka, create=False)
    return recorded != {broker}


async def recover_broker_reset(
    settings: Settings,
    *,
    on_progress: Callable[[RebuildProgress], None] | None = None,
    say: Callable[[str], None] = lambda _line: None,
    drain_seconds: float = DRAIN_SECONDS,
) -> RecoveryReport:
    """Every step of the module's docstring, in order; `RecoverError` names what failed."""
    kafka = settings.kafka
    assert kafka is not None
    try:
        await topic_admin.ensure_topics(kafka)
    except (topic_admin.TopicPartitionMismatch, topic_admin.TopicConfigMismatch) as error:
        raise RecoverError(
            f"{error}: a client wrote to the new broker before the topics were made; "
            "delete that topic on the broker, then run the recovery again"
        ) from error
    epoch = await read_broker_epoch(kafka, create=True)
    assert epoch is not None
    report = RecoveryReport(epoch)
    admin = await _connect(settings.admin_url)
    try:
        await _require_current(admin)
        recorded = await recorded_epochs(admin)
        for spec in write_side_specs():
            if spec.service not in recorded or await _no_schema(admin, spec.service):
                continue
            recovery = SchemaRecovery(spec.service)
            if recorded[spec.service] != epoch:
                recovery.refilled = await _refill(admin, spec.service, epoch)
                say(f"{spec.service}: outbox refilled with {recovery.refilled} events")
            recovery.published = await _drain(settings, kafka, spec.service, drain_seconds)
            say(f"{spec.service}: {recovery.published} events published")
            report.schemas.append(recovery)
        if recorded.get(LIVE_SCHEMA) != epoch:
            rebuild = Rebuild(kafka, settings.admin_url, on_progress=on_progress)
            try:
                rebuilt = await rebuild.run(new_epoch=epoch)
            except RebuildError as error:
                raise RecoverError(str(error)) from error
            report.rebuilt_records = rebuilt.records
            report.rebuilt_events_per_second = rebuilt.events_per_second
            report.old_read_models = rebuilt.old_schema
    finally:
        await admin.close()
    return report


async def _connect(admin_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(asyncpg_dsn(admin_url))
    except (OSError, asyncpg.PostgresError) as error:
        raise RecoverError(f"cannot reach Postgres at the admin URL: {error}") from error


async def _no_schema(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NULL", f"{schema}.outbox"))


async def _require_current(conn: asyncpg.Connection) -> None:
    for spec in service_specs():
        if await conn.fetchval("SELECT to_regnamespace($1) IS NULL", spec.service):
            continue
        if behind := await schema_behind(conn, spec):
            raise RecoverError(f"{behind}: run `awooop migrate` before the recovery")


async def _refill(conn: asyncpg.Connection, schema: str, epoch: str) -> int:
    """The outbox refilled and the epoch recorded, in one transaction under the relay lock."""
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute("SELECT pg_advisory_xact_lock($1)", relay_lock_key(schema))
        status = await conn.execute(_REFILL)
        await conn.execute(_RECORD_EPOCH, epoch)
    return int(status.split()[-1])


async def _drain(settings: Settings, kafka: KafkaSettings, schema: str, within: float) -> int:
    """Publish `schema`'s outbox as its service's role until it is empty; rows published."""
    role = role_name(schema)

    async def as_service(conn: asyncpg.Connection) -> None:
        # On every acquire: a released connection is reset (RESET ALL drops the role).
        await conn.execute(f'SET ROLE "{role}"')

    pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.admin_url),
        min_size=1,
        max_size=2,
        setup=as_service,
        server_settings={"application_name": f"awooop-recover-{schema}", "search_path": schema},
    )
    relay = OutboxRelay(
        pool, schema, lambda: create_producer(kafka, client_id=f"awooop-recover-{schema}")
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        while True:
            if await relay.relay_once():
                continue
            left = await pool.fetchval("SELECT count(*) FROM outbox")
            if left == 0:
                return relay.published
            if loop.time() > deadline:
                raise RecoverError(
                    f"{schema}: {left} outbox rows still unpublished after {within:.0f}s"
                )
            await asyncio.sleep(0.2)  # the service's own relay holds the lock: it drains
    finally:
        await relay.close()
        await pool.close()


def _to_stderr(line: str) -> None:
    """Each step as it ends, for a log; the summary that follows goes to stdout."""
    print(line, file=sys.stderr)


@contextmanager
def _display(quiet: bool) -> Iterator[RebuildDisplay | None]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    with RebuildDisplay(console) as display:
        yield display


def recover_and_report(settings: Settings, *, quiet: bool = False) -> Sequence[str]:
    """Run the recovery to its end (progress on a terminal); the lines that say what it did."""
    with _display(quiet) as display:
        report = asyncio.run(
            recover_broker_reset(
                settings,
                on_progress=display.update if display else None,
                say=_to_stderr if display is None and not quiet else lambda _line: None,
            )
        )
    return report.lines()


def run_broker_reset(args: argparse.Namespace) -> int:
    for line in recover_and_report(Settings.from_env(admin=True), quiet=args.quiet):
        print(line)
    return 0

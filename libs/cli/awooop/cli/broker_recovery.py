"""The steps of `awooop recover broker-reset`, in order (the command is in `recover.py`).

1. The registry topics, created with their configs and verified (a topic that a
   client auto-created on the new broker with the wrong partition count is named,
   never silently used), then the new broker's epoch (written when empty).
2. On a first recovery onto this broker, one epoch-check interval of waiting: every
   service still running sees the new broker and halts, and its relay stops. Then
   the topics the services' relays write must still be empty: a record there was
   published before its service halted, ahead of the older events the refill is
   about to publish, and consumers would read the two out of order. The recovery
   refuses and says how to start over.
3. Per write-side schema, one transaction under that schema's relay lock: the
   epoch re-read (a schema already on this epoch is not refilled twice), the outbox
   refilled with every event in position order (parked rows stay parked) and the
   new epoch recorded;
4. each outbox published to the new broker by the relay's own code, as the
   service's role, up to the last event it held when the step began (resumed
   services keep appending; their relays take turns on the same lock);
5. the read models rebuilt from the refilled topics with the new epoch.

One recovery runs at a time (a session advisory lock); every step is safe to run
again after a failure.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from awooop.cli.migrate import service_schemas
from awooop.contracts.registries.topics import ALL_TOPICS
from awooop.infra.kafka import admin as topic_admin
from awooop.infra.kafka.epoch import read_broker_epoch
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres.provisioning import schema_behind
from awooop.infra.postgres.roles import role_name
from awooop.infra.postgres.schema import ServiceSchema
from awooop.infra.relay import OutboxRelay, relay_lock_key
from awooop.infra.settings import KafkaSettings, Settings, asyncpg_dsn
from awooop.projector.rebuild import LIVE_SCHEMA, Rebuild, RebuildError, RebuildProgress

DRAIN_SECONDS = 600.0
"""How long one schema's outbox may take to reach the new broker before the command
gives up (and can be run again)."""

HALT_MARGIN_SECONDS = 2.0
"""Added to the epoch-check interval when waiting for running services to halt."""

_RECOVERY_LOCK = zlib.crc32(b"awooop.recover.broker-reset")

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


def write_side_schemas() -> list[ServiceSchema]:
    """The services that keep an event store and an outbox."""
    return [schema for schema in service_schemas() if "store" in schema.branches]


async def recorded_epochs(conn: asyncpg.Connection) -> dict[str, str | None]:
    """Each service schema's recorded broker epoch (None: no schema or none recorded)."""
    epochs: dict[str, str | None] = {}
    for schema in service_schemas():
        if await conn.fetchval("SELECT to_regclass($1) IS NULL", f"{schema.service}.broker_epoch"):
            epochs[schema.service] = None
            continue
        epochs[schema.service] = await conn.fetchval(
            f'SELECT epoch FROM "{schema.service}".broker_epoch'
        )
    return epochs


async def recovery_due(settings: Settings) -> bool:
    """True when some schema records an epoch the broker does not hold (a broker loss)."""
    assert settings.kafka is not None
    conn = await connect_admin(settings.admin_url)
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
    admin = await connect_admin(settings.admin_url)
    try:
        if not await admin.fetchval("SELECT pg_try_advisory_lock($1)", _RECOVERY_LOCK):
            raise RecoverError("another `awooop recover broker-reset` is running")
        await _require_current(admin)
        epoch = await _topics_and_epoch(kafka)
        report = RecoveryReport(epoch)
        recorded = await recorded_epochs(admin)
        if epoch not in recorded.values():
            wait = settings.epoch_check_seconds + HALT_MARGIN_SECONDS
            say(f"waiting {wait:.0f}s for services still running to halt on the new broker")
            await asyncio.sleep(wait)
            await _require_relay_topics_empty(kafka)
        for schema in write_side_schemas():
            if await _no_schema(admin, schema.service):
                continue
            recovery = SchemaRecovery(schema.service)
            recovery.refilled = await _refill(admin, schema.service, epoch)
            if recovery.refilled is not None:
                say(f"{schema.service}: outbox refilled with {recovery.refilled} events")
            recovery.published = await _drain(settings, kafka, schema.service, drain_seconds)
            say(f"{schema.service}: {recovery.published} events published")
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
        await admin.close()  # ends the session, and its advisory lock
    return report


async def connect_admin(admin_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(asyncpg_dsn(admin_url))
    except (OSError, asyncpg.PostgresError) as error:
        raise RecoverError(f"cannot reach Postgres at the admin URL: {error}") from error


TOPIC_ATTEMPTS = 3
"""Rounds of making the topics, each after dropping the empty ones a client made first."""


async def _topics_and_epoch(kafka: KafkaSettings) -> str:
    for attempt in range(1, TOPIC_ATTEMPTS + 1):
        try:
            await topic_admin.ensure_topics(kafka)
            break
        except (topic_admin.TopicPartitionMismatch, topic_admin.TopicConfigMismatch) as error:
            # A service still running may have asked the new broker for a topic before
            # it was made; an empty one is made again with the registry's count.
            if (
                isinstance(error, topic_admin.TopicPartitionMismatch)
                and attempt < TOPIC_ATTEMPTS
                and await topic_admin.drop_empty_topics(kafka, error.mismatches)
            ):
                continue
            raise RecoverError(
                f"{error}: a client wrote to the new broker before the topics were made; "
                "delete that topic on the broker, then run the recovery again"
            ) from error
    epoch = await read_broker_epoch(kafka, create=True)
    assert epoch is not None
    return epoch


async def _require_relay_topics_empty(kafka: KafkaSettings) -> None:
    """Refuse when a topic the services' relays write already holds records."""
    relayed = {schema.service for schema in write_side_schemas()}
    topics = [t.name for t in ALL_TOPICS if t.producer in relayed]
    async with LogReader(kafka, partitions_of(topics), client_id="awooop-recover") as reader:
        records = await reader.read_all(within=60)
    if records:
        where = sorted({r.topic for r in records})
        raise RecoverError(
            f"{len(records)} records reached {', '.join(where)} on the new broker before "
            "their services halted: they would be read ahead of the older events the "
            "refill publishes. With every service halted (/readyz E-BROKER-RESET) or "
            "stopped, start the broker empty again and run the recovery again"
        )


async def _no_schema(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NULL", f"{schema}.outbox"))


async def _require_current(conn: asyncpg.Connection) -> None:
    for schema in service_schemas():
        if await conn.fetchval("SELECT to_regnamespace($1) IS NULL", schema.service):
            continue
        if behind := await schema_behind(conn, schema):
            raise RecoverError(f"{behind}: run `awooop migrate` before the recovery")


async def _refill(conn: asyncpg.Connection, schema: str, epoch: str) -> int | None:
    """Under the relay lock, one transaction: unless the schema already records `epoch`,
    the outbox refilled and the epoch recorded. Events refilled, or None."""
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute("SELECT pg_advisory_xact_lock($1)", relay_lock_key(schema))
        if await conn.fetchval("SELECT epoch FROM broker_epoch") == epoch:
            return None
        status = await conn.execute(_REFILL)
        await conn.execute(_RECORD_EPOCH, epoch)
    return int(status.split()[-1])


async def _drain(settings: Settings, kafka: KafkaSettings, schema: str, within: float) -> int:
    """Publish `schema`'s outbox as its service's role up to the last event it holds now;
    rows this command published (the service's own relay may publish some)."""
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
        last = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
        while True:
            if await relay.relay_once():
                continue
            left = await pool.fetchval("SELECT count(*) FROM outbox WHERE position <= $1", last)
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

"""Rebuilding the read models from the log into a fresh schema, then swapping it in.

An operator command (the admin URL; no service holds it) runs the steps:

1. a fresh schema `projector_rebuild_<timestamp>`, migrated as the projector's
   role (its own offsets, policies and grants), its secondary indexes dropped
   until the load is over;
2. the load: every partition of the projector's topics from offset 0, read
   group-less and recorded as group `awooop.projector.rebuild.<timestamp>`,
   folded in large batches by the live projector's own processor, each batch
   one transaction with its offsets (so the fold is the live one, record for
   record);
3. catching up: the load stops at a snapshot of the live projector's stored
   offsets, never past them; then the indexes are built;
4. the swap, one transaction: lock the live offsets table (`EXCLUSIVE`: the
   live projector's next batch waits, the query API's reads do not), read the
   final live offsets, fold the few records up to exactly them, hand the
   rebuilt offsets and the broker epoch to the live group, and rename the two
   schemas. Postgres re-plans every cached statement after a schema rename
   (it resolves `search_path` again), so the API's and the projector's pooled
   connections read and write the new tables from their next statement; the
   live batch that waited on the lock applies its records to the new schema,
   and the offset table there drops what the rebuild already applied.

`--dry-run` stops at step 4 without renaming: it digests both schemas while the
live one is locked at the same offsets, reports every difference and drops the
rebuilt schema. After a broker loss (`awooop recover broker-reset`) the live
offsets belong to the lost broker: the load reads to the high watermarks
instead, and the new schema records the new epoch.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka.structs import TopicPartition

from awooop.infra.kafka.log_reader import LogReader, Record, partitions_of
from awooop.infra.kafka.offsets import Offsets, store_offsets
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import is_data_error
from awooop.infra.postgres.migrate import migrate
from awooop.infra.postgres.roles import role_name
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import SERVICE, spec
from awooop.projector.domain.checksums import Difference, differences
from awooop.projector.handlers import ReadModelProjector

log = get_logger(__name__)

LIVE_SCHEMA = SERVICE
REBUILD_PREFIX = f"{SERVICE}_rebuild_"
OLD_PREFIX = f"{SERVICE}_old_"
BATCH_RECORDS = 5000
_SWAP_LOCK_TIMEOUT = "30s"


class RebuildError(RuntimeError):
    """A rebuild that cannot start or finish; says why in one line."""


@dataclass(frozen=True)
class RebuildProgress:
    """What a progress display shows, after every batch."""

    phase: str
    records: int
    """Records read so far (every type, poison included)."""
    total: int | None
    """Records to read in this phase, once the high watermarks are known."""
    lag: dict[str, int]
    """Records still to read, per topic."""
    rate: float
    """Records per second since the load began."""

    @property
    def eta_seconds(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.records) / self.rate)


@dataclass
class RebuildReport:
    """What a rebuild did."""

    schema: str
    group: str
    records: int = 0
    events: int = 0
    """Events folded into the read models."""
    poison: int = 0
    """Records the fold refused (the live projector dead-lettered them too)."""
    seconds: float = 0.0
    swapped: bool = False
    old_schema: str | None = None
    dropped: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[RebuildProgress], None]


def _timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


class Rebuild:
    """One rebuild of the projector's read models; `run()` once."""

    def __init__(
        self,
        kafka: KafkaSettings,
        admin_url: str,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_progress: Progress | None = None,
        batch_records: int = BATCH_RECORDS,
    ) -> None:
        self._kafka = kafka
        self._admin_url = admin_url
        stamp = _timestamp(now())
        self.schema = f"{REBUILD_PREFIX}{stamp}"
        self.old_schema = f"{OLD_PREFIX}{stamp}"
        self._spec = spec()
        self.group = f"{self._spec.consumer_group}.rebuild.{stamp}"
        self._on_progress = on_progress or (lambda _p: None)
        self._batch_records = batch_records
        self._processor = ReadModelProjector()
        self._role = role_name(SERVICE)
        self.report = RebuildReport(self.schema, self.group)
        self._started = 0.0

    async def run(
        self, *, dry_run: bool = False, drop_old: bool = False, new_epoch: str | None = None
    ) -> RebuildReport:
        """Build, catch up, then swap (or only compare, with `dry_run`).

        `new_epoch` is for a broker loss: read to the high watermarks, not to the
        live offsets (they name the lost broker's log), and record this epoch.
        """
        admin = await self._connect()
        try:
            await self._require_live(admin)
            await self._create_schema(admin)
            try:
                await self._build(admin, dry_run=dry_run, new_epoch=new_epoch)
            except BaseException:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                raise
            if dry_run:
                await admin.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
            elif drop_old:
                self.report.dropped = await drop_old_schemas(admin)
        finally:
            await admin.close()
        self.report.seconds = time.monotonic() - self._started
        return self.report

    async def _connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(asyncpg_dsn(self._admin_url))
        except (OSError, asyncpg.PostgresError) as error:
            raise RebuildError(f"cannot reach Postgres at the admin URL: {error}") from error

    async def _require_live(self, admin: asyncpg.Connection) -> None:
        found = await admin.fetchval(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = $1 AND table_name = 'projector_offsets'",
            LIVE_SCHEMA,
        )
        if not found:
            raise RebuildError(f"no live schema {LIVE_SCHEMA!r}: run `awooop migrate` first")

    async def _create_schema(self, admin: asyncpg.Connection) -> None:
        await admin.execute(f'CREATE SCHEMA "{self.schema}" AUTHORIZATION "{self._role}"')
        await migrate(
            self._admin_url,
            self.schema,
            self._spec.branches,
            self._spec.migrations,
            role=self._role,
        )

    async def _build(
        self, admin: asyncpg.Connection, *, dry_run: bool, new_epoch: str | None
    ) -> None:
        indexes = await drop_secondary_indexes(admin, self.schema)
        load = await self._connect()
        try:
            await load.execute(f'SET ROLE "{self._role}"; SET search_path TO "{self.schema}"')
            partitions = partitions_of(self._spec.topics)
            async with LogReader(
                self._kafka, partitions, group_id=self.group, client_id="awooop-rebuild"
            ) as reader:
                self._started = time.monotonic()
                first_stops = None if new_epoch is not None else await live_offsets(admin)
                await self._load(load, reader, first_stops, "load")
                for definition in indexes:
                    await admin.execute(definition)
                await self._finish(admin, load, reader, dry_run=dry_run, new_epoch=new_epoch)
        finally:
            await load.close()

    async def _finish(
        self,
        admin: asyncpg.Connection,
        load: asyncpg.Connection,
        reader: LogReader,
        *,
        dry_run: bool,
        new_epoch: str | None,
    ) -> None:
        async with admin.transaction():
            await admin.execute(f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'")
            await admin.execute(f'LOCK TABLE "{LIVE_SCHEMA}".projector_offsets IN EXCLUSIVE MODE')
            if new_epoch is None:
                await self._load(load, reader, await live_offsets(admin), "catch-up")
            if dry_run:
                live = await schema_checksums(admin, LIVE_SCHEMA)
                rebuilt = await schema_checksums(admin, self.schema)
                self.report.differences = differences(live, rebuilt)
                return  # the transaction ends, releasing the live projector
            await self._hand_over(admin, new_epoch)
        self.report.swapped = True
        self.report.old_schema = self.old_schema
        log.info("read_models_swapped", schema=self.schema, old=self.old_schema)

    async def _hand_over(self, admin: asyncpg.Connection, new_epoch: str | None) -> None:
        new, live = f'"{self.schema}"', f'"{LIVE_SCHEMA}"'
        await admin.execute(
            f"INSERT INTO {new}.projector_offsets (consumer_group, topic, partition, next_offset) "
            f"SELECT $1, topic, partition, next_offset FROM {new}.projector_offsets "
            "WHERE consumer_group = $2",
            self._spec.consumer_group,
            self.group,
        )
        if new_epoch is not None:
            await admin.execute(
                f"INSERT INTO {new}.broker_epoch (singleton, epoch) VALUES (true, $1)", new_epoch
            )
        else:
            await admin.execute(
                f"INSERT INTO {new}.broker_epoch (singleton, epoch, recorded_at) "
                f"SELECT singleton, epoch, recorded_at FROM {live}.broker_epoch"
            )
        await admin.execute(f'ALTER SCHEMA {live} RENAME TO "{self.old_schema}"')
        await admin.execute(f"ALTER SCHEMA {new} RENAME TO {live}")

    async def _load(
        self,
        conn: asyncpg.Connection,
        reader: LogReader,
        stops: Offsets | None,
        phase: str,
    ) -> None:
        before = self.report.records
        async for batch in reader.batches(stops, max_records=self._batch_records):
            await self._apply(conn, batch, dict(reader.positions))
            self.report.records += len(batch)
            self._on_progress(self._progress(reader, stops, phase, self.report.records - before))

    def _progress(
        self, reader: LogReader, stops: Offsets | None, phase: str, done: int
    ) -> RebuildProgress:
        ends = stops if stops is not None else reader.highwaters
        lag: dict[str, int] = {}
        for tp in reader.partitions:
            behind = max(0, ends.get(tp, 0) - reader.positions[tp])
            lag[tp.topic] = lag.get(tp.topic, 0) + behind
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return RebuildProgress(
            phase=phase,
            records=done,
            total=done + sum(lag.values()),
            lag=lag,
            rate=self.report.records / elapsed,
        )

    async def _apply(
        self, conn: asyncpg.Connection, batch: Sequence[Record], ends: Offsets
    ) -> None:
        decoded: list[DecodedRecord] = []
        for record in batch:
            raw = RawRecord.of(record)
            if not self._processor.handles(raw):
                continue
            try:
                decoded.append(self._processor.decode(raw))
            except PoisonRecord:
                self.report.poison += 1
        touched = {TopicPartition(r.topic, r.partition) for r in batch}
        offsets = {tp: ends[tp] for tp in touched}
        try:
            async with conn.transaction():
                await self._processor.process(conn, decoded)
                await store_offsets(conn, self.group, offsets)
        except Exception as error:
            if not is_data_error(error):
                raise
            await self._apply_one_by_one(conn, decoded, offsets)
            return
        self.report.events += len(decoded)

    async def _apply_one_by_one(
        self, conn: asyncpg.Connection, decoded: Sequence[DecodedRecord], offsets: Offsets
    ) -> None:
        """A batch with a record the fold refuses: the rest apply, as live isolation does."""
        for item in decoded:
            try:
                async with conn.transaction():
                    await self._processor.process(conn, [item])
            except Exception as error:
                if not is_data_error(error):
                    raise
                self.report.poison += 1
                log.warning("rebuild_record_refused", topic=item.raw.topic, error=repr(error))
                continue
            self.report.events += 1
        async with conn.transaction():
            await store_offsets(conn, self.group, offsets)


async def live_offsets(conn: asyncpg.Connection) -> Offsets:
    """The live projector's stored offsets (partitions it never read are absent: 0)."""
    rows = await conn.fetch(
        f'SELECT topic, partition, next_offset FROM "{LIVE_SCHEMA}".projector_offsets '
        "WHERE consumer_group = $1",
        spec().consumer_group,
    )
    return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def drop_secondary_indexes(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Drop the indexes of `schema` that back no constraint; return their definitions.

    Primary keys stay (the merges' `ON CONFLICT` needs them); the rest are built
    once after the load, which is cheaper than maintaining them row by row.
    """
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = $1 "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n "
        "ON n.oid = c.connamespace WHERE n.nspname = $1 AND c.conname = i.indexname) "
        "ORDER BY i.indexname",
        schema,
    )
    for row in rows:
        await conn.execute(f'DROP INDEX "{schema}"."{row["indexname"]}"')
    return [row["indexdef"] for row in rows]


async def drop_old_schemas(conn: asyncpg.Connection) -> list[str]:
    """Drop every schema an earlier swap kept (`projector_old_*`); return their names."""
    names = [
        row["nspname"]
        for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname",
            OLD_PREFIX,
        )
    ]
    for name in names:
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    return names

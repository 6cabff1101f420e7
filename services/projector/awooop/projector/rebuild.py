"""Rebuilding the read models from the log into a fresh schema, then swapping it in.

An operator command (the admin URL; no service holds it) runs the steps:

1. a fresh schema `projector_rebuild_<timestamp>`, migrated as the projector's
   role (its own offsets, policies and grants), its secondary indexes dropped
   until the load is over;
2. the load: every partition of the projector's topics from offset 0, read
   group-less and recorded as group `awooop.projector.rebuild.<timestamp>`,
   folded in large batches by the live projector's own processor, each batch
   one transaction with its offsets (so the fold is the live one, record for
   record), contract publications verified with the same key ring the live
   projector reads from the settings;
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
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka.structs import TopicPartition

from awooop.infra.kafka.epoch import read_broker_epoch
from awooop.infra.kafka.log_reader import LogNotReadToEnd, partitions_of
from awooop.infra.kafka.offsets import Offsets
from awooop.infra.logging import get_logger
from awooop.infra.postgres.migrate import migrate
from awooop.infra.postgres.roles import role_name
from awooop.infra.settings import KafkaSettings, Settings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.app import SERVICE, spec
from awooop.projector.domain.checksums import Difference, differences
from awooop.projector.rebuild_load import (
    PARALLEL_MIN_RECORDS,
    LoadCounts,
    LoadFailed,
    LoadJob,
    LoadState,
    PartitionLoader,
    default_workers,
    load_in_parallel,
    load_in_process,
    share_out,
)
from awooop.security.signing_keys import KeyRing

log = get_logger(__name__)

LIVE_SCHEMA = SERVICE
REBUILD_PREFIX = f"{SERVICE}_rebuild_"
OLD_PREFIX = f"{SERVICE}_old_"
BATCH_RECORDS = 5000
_SWAP_LOCK_TIMEOUT = "30s"
_SWAP_READ_SECONDS = 30.0
"""How long the locked catch-up may read before the swap gives up (the live projector
waits on the lock meanwhile)."""
_REBUILD_LOCK = zlib.crc32(b"awooop.projector.rebuild")


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

    def add(self, counts: LoadCounts) -> None:
        self.records += counts.records
        self.events += counts.events
        self.poison += counts.poison

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
        workers: int | None = None,
        ring: KeyRing | None = None,
    ) -> None:
        """`ring` verifies contract publications; by default the settings' ring, and
        `SettingsError` when none is configured (live needs the same one)."""
        self._ring = ring or Settings.from_env().contract_key_ring()
        self._kafka = kafka
        self._admin_url = admin_url
        stamp = _timestamp(now())
        self.schema = f"{REBUILD_PREFIX}{stamp}"
        self.old_schema = f"{OLD_PREFIX}{stamp}"
        self._spec = spec()
        self.group = f"{self._spec.consumer_group}.rebuild.{stamp}"
        self._on_progress = on_progress or (lambda _p: None)
        self._batch_records = batch_records
        self._workers = workers
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
            if not await admin.fetchval("SELECT pg_try_advisory_lock($1)", _REBUILD_LOCK):
                raise RebuildError("another rebuild of the read models is running")
            await self._require_live(admin)
            if new_epoch is None:
                await self._require_same_broker(admin)
            # Only one rebuild runs (the lock): a schema left by one that was killed goes.
            await drop_schemas(admin, REBUILD_PREFIX)
            try:
                await self._create_schema(admin)
                await self._build(admin, dry_run=dry_run, new_epoch=new_epoch)
            except BaseException:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                raise
            if dry_run:
                await admin.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
            elif drop_old:
                self.report.dropped = await drop_schemas(admin, OLD_PREFIX)
        finally:
            await admin.close()  # ends the session, and its advisory lock
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

    async def _require_same_broker(self, admin: asyncpg.Connection) -> None:
        """The live offsets name positions in the broker the read models were built from;
        on another broker they may lie past its log's end and the load would never reach
        them. That is a broker loss, and its recovery rebuilds the read models itself."""
        recorded = await admin.fetchval(f'SELECT epoch FROM "{LIVE_SCHEMA}".broker_epoch')
        if recorded is None:
            return  # the live projector never ran: its offsets are empty too
        broker = await read_broker_epoch(self._kafka, create=False)
        if broker != recorded:
            raise RebuildError(
                f"the read models were built from broker epoch {recorded}, the broker holds "
                f"{broker or 'none'}: after a broker loss run `awooop recover broker-reset`"
            )

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
        partitions = partitions_of(self._spec.topics)
        self._started = time.monotonic()
        stops = None if new_epoch is not None else await live_offsets(admin)
        loaded = await self._load(partitions, stops)
        for definition in indexes:
            await admin.execute(definition)
        catch_up = self._job(partitions, loaded.positions, None)
        async with PartitionLoader(catch_up) as loader:
            if new_epoch is None:
                # What the live projector applied during the load, without the lock: the
                # locked pass of the swap then reads only the last few records.
                await loader.load(await live_offsets(admin))
            await self._finish(admin, loader, dry_run=dry_run, new_epoch=new_epoch)
            self.report.add(loader.state.counts)

    def _job(
        self,
        partitions: Sequence[TopicPartition],
        starts: Offsets,
        stops: Offsets | None,
    ) -> LoadJob:
        return LoadJob(
            kafka=self._kafka,
            admin_url=self._admin_url,
            schema=self.schema,
            role=self._role,
            group=self.group,
            partitions=tuple(partitions),
            starts=dict(starts),
            stops=None if stops is None else {tp: stops.get(tp, 0) for tp in partitions},
            batch_records=self._batch_records,
            ring=self._ring,
        )

    async def _load(self, partitions: Sequence[TopicPartition], stops: Offsets | None) -> LoadState:
        """Every partition to its stop: in this process with one worker, else by forked
        loaders. Without a `workers` choice, one per core unless the log is short."""
        sizes = stops or {}
        workers = self._workers
        if workers is None:
            short = stops is not None and sum(stops.values()) < PARALLEL_MIN_RECORDS
            workers = 1 if short else default_workers()
        shares = share_out(partitions, sizes, workers)

        def progress(state: LoadState) -> None:
            self._on_progress(self._progress(partitions, state, stops, "load"))

        try:
            if len(shares) == 1:
                loaded = await load_in_process(self._job(partitions, {}, stops), progress)
            else:
                jobs = [self._job(share, {}, stops) for share in shares]
                loaded = await load_in_parallel(jobs, progress)
        except LoadFailed as error:
            raise RebuildError(str(error)) from error
        self.report.add(loaded.counts)
        return loaded

    async def _finish(
        self,
        admin: asyncpg.Connection,
        loader: PartitionLoader,
        *,
        dry_run: bool,
        new_epoch: str | None,
    ) -> None:
        async with admin.transaction():
            await admin.execute(f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'")
            await admin.execute(f'LOCK TABLE "{LIVE_SCHEMA}".projector_offsets IN EXCLUSIVE MODE')
            if new_epoch is None:
                stops = await live_offsets(admin)
                partitions = list(loader.state.positions)

                def progress(state: LoadState) -> None:
                    self._on_progress(self._progress(partitions, state, stops, "catch-up"))

                try:
                    await loader.load(stops, progress, within=_SWAP_READ_SECONDS)
                except LogNotReadToEnd as error:
                    raise RebuildError(f"the swap's catch-up did not end: {error}") from error
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

    def _progress(
        self,
        partitions: Sequence[TopicPartition],
        state: LoadState,
        stops: Offsets | None,
        phase: str,
    ) -> RebuildProgress:
        ends = stops if stops is not None else state.highwaters
        lag: dict[str, int] = {}
        known = True
        for tp in partitions:
            if tp not in ends:
                known = known and stops is not None
                continue
            behind = max(0, ends[tp] - state.positions.get(tp, 0))
            lag[tp.topic] = lag.get(tp.topic, 0) + behind
        done = state.counts.records
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return RebuildProgress(
            phase=phase,
            records=done,
            total=done + sum(lag.values()) if known else None,
            lag=lag,
            rate=(self.report.records + done) / elapsed,
        )


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


async def drop_schemas(conn: asyncpg.Connection, prefix: str) -> list[str]:
    """Drop every schema named `prefix…`: those earlier swaps kept (`OLD_PREFIX`), or
    those of rebuilds that were killed (`REBUILD_PREFIX`); return their names."""
    names = [
        row["nspname"]
        for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname",
            prefix,
        )
    ]
    for name in names:
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    return names

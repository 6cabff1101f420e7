"""The load phase of a rebuild: records folded into the fresh schema, in parallel.

The projector's partitions are shared out among worker processes, each with its
own log reader, its own connection (the projector's role, the fresh schema as
search path) and the live projector's own processor. A batch is one transaction
that also stores the worker's offsets under the rebuild group, exactly as the
live projector applies a batch. Workers never share a partition, so per-partition
order holds; rows that several partitions feed (a run's row) merge commutatively
and are written in key order (the merge statements sort), so two workers wait on
each other's row locks but never deadlock.

Workers are forked, not spawned: a spawned interpreter spends most of a second
importing the projector before it reads one record. The parent runs no thread of its
own at the fork (the progress display refreshes on each update; asyncio's resolver
threads, if any, sit idle and hold no lock a worker needs) and opens its log reader
only after the workers ended; a worker freezes what it inherited out of collection
and takes the default action on SIGINT and SIGTERM. A worker that
fails ends the whole load: the others are killed and the caller drops the schema.
With one worker, or a log too short to repay a fork, the load runs in-process
through the same code.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import asyncpg
from aiokafka.structs import TopicPartition

from awooop.infra.heap import heap_frozen
from awooop.infra.kafka.log_reader import LogReader, Record
from awooop.infra.kafka.offsets import Offsets, store_offsets
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.logging import get_logger
from awooop.infra.postgres.errors import is_data_error
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.handlers import ReadModelProjector
from awooop.security.signing_keys import KeyRing

log = get_logger(__name__)

PARALLEL_MIN_RECORDS = 10_000
"""Below this many records to load, forked loaders save nothing over one in-process loader
(measured on two cores: about even at 6,000 records, a third faster with two at 18,000)."""

_POLL_SECONDS = 0.05


@dataclass
class LoadCounts:
    """What a loader did."""

    records: int = 0
    """Records read (every type, poison included)."""
    events: int = 0
    """Events folded into the read models."""
    poison: int = 0
    """Records the fold refused (the live projector dead-lettered them too)."""

    def add(self, other: LoadCounts) -> None:
        self.records += other.records
        self.events += other.events
        self.poison += other.poison


@dataclass(frozen=True)
class LoadJob:
    """One loader's share: its partitions, where it starts and where it stops."""

    kafka: KafkaSettings
    admin_url: str
    schema: str
    role: str
    group: str
    partitions: tuple[TopicPartition, ...]
    starts: Mapping[TopicPartition, int]
    stops: Mapping[TopicPartition, int] | None
    """Per-partition stops; None reads to the high watermarks the fetches report."""
    batch_records: int
    ring: KeyRing | None = None
    """The ring contract publications are verified with: the live projector's."""


@dataclass
class LoadState:
    """Where a loader's reading stands, for progress displays and for what comes next."""

    positions: Offsets = field(default_factory=dict)
    highwaters: Offsets = field(default_factory=dict)
    counts: LoadCounts = field(default_factory=LoadCounts)


class LoadFailed(RuntimeError):
    """A worker of a parallel load failed; says which and why, in one line."""


class BatchLoader:
    """Applies batches of raw records to the fresh schema as the live projector would."""

    def __init__(self, group: str, ring: KeyRing | None = None) -> None:
        self._group = group
        self._processor = ReadModelProjector(ring=ring)
        self.counts = LoadCounts()

    async def apply(self, conn: asyncpg.Connection, batch: Sequence[Record], ends: Offsets) -> None:
        """One transaction: the batch's events and its partitions' offsets (`ends`)."""
        decoded: list[DecodedRecord] = []
        for record in batch:
            raw = RawRecord.of(record)
            if not self._processor.handles(raw):
                continue
            try:
                decoded.append(self._processor.decode(raw))
            except PoisonRecord:
                self.counts.poison += 1
        offsets = {tp: ends[tp] for tp in {TopicPartition(r.topic, r.partition) for r in batch}}
        self.counts.records += len(batch)
        try:
            async with conn.transaction():
                await self._processor.process(conn, decoded)
                await store_offsets(conn, self._group, offsets)
        except Exception as error:
            if not is_data_error(error):
                raise
            await self._apply_one_by_one(conn, decoded, offsets)
            return
        self.counts.events += len(decoded)

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
                self.counts.poison += 1
                log.warning("rebuild_record_refused", topic=item.raw.topic, error=repr(error))
                continue
            self.counts.events += 1
        async with conn.transaction():
            await store_offsets(conn, self._group, offsets)


async def connect_as_projector(admin_url: str, role: str, schema: str) -> asyncpg.Connection:
    """An admin login acting as the projector's role, on `schema`."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    await conn.execute(f'SET ROLE "{role}"; SET search_path TO "{schema}"')
    return conn


class PartitionLoader:
    """A connection and a log reader over `job`'s partitions, opened together; `load()`
    reads to the stops, applying every batch. The rebuild's catch-up opens one before
    it takes the swap lock, so the lock is held only while records are applied."""

    def __init__(self, job: LoadJob) -> None:
        self._job = job
        self._loader = BatchLoader(job.group, job.ring)
        self.state = LoadState(counts=self._loader.counts)
        self._conn: asyncpg.Connection | None = None
        self._reader: LogReader | None = None

    async def __aenter__(self) -> PartitionLoader:
        job = self._job
        self._conn = await connect_as_projector(job.admin_url, job.role, job.schema)
        try:
            self._reader = await LogReader(
                job.kafka,
                job.partitions,
                starts=job.starts,
                group_id=job.group,
                client_id="awooop-rebuild",
            ).__aenter__()
        except BaseException:
            await self._conn.close()
            raise
        self.state.positions = self._reader.positions
        self.state.highwaters = self._reader.highwaters
        return self

    async def __aexit__(self, *_exc: object) -> None:
        try:
            if self._reader is not None:
                await self._reader.__aexit__(None, None, None)
        finally:
            if self._conn is not None:
                await self._conn.close()

    async def load(
        self,
        stops: Mapping[TopicPartition, int] | None,
        on_batch: Callable[[LoadState], None] = lambda _s: None,
        *,
        within: float | None = None,
    ) -> LoadState:
        """Read to `stops` (None: the high watermarks), one transaction per batch;
        `LogNotReadToEnd` when `within` seconds pass first."""
        assert self._conn is not None
        assert self._reader is not None
        reader = self._reader
        batches = reader.batches(stops, max_records=self._job.batch_records, within=within)
        async for batch in batches:
            await self._loader.apply(self._conn, batch, dict(reader.positions))
            on_batch(self.state)
        return self.state


async def load_in_process(
    job: LoadJob, on_batch: Callable[[LoadState], None] = lambda _s: None
) -> LoadState:
    """Read `job`'s partitions to `job.stops`, applying every batch; the final state."""
    async with PartitionLoader(job) as loader:
        with heap_frozen():
            await loader.load(job.stops, on_batch)
        state = loader.state
        return LoadState(dict(state.positions), dict(state.highwaters), state.counts)


def share_out(
    partitions: Sequence[TopicPartition], sizes: Mapping[TopicPartition, int], workers: int
) -> list[tuple[TopicPartition, ...]]:
    """`partitions` in up to `workers` groups of about equal size: each partition, largest
    first, to the group with the fewest records so far (then the fewest partitions)."""
    groups: list[list[TopicPartition]] = [[] for _ in range(max(1, workers))]
    loads = [0] * len(groups)
    for tp in sorted(partitions, key=lambda tp: (-sizes.get(tp, 0), tp)):
        least = min(range(len(groups)), key=lambda i: (loads[i], len(groups[i])))
        groups[least].append(tp)
        loads[least] += sizes.get(tp, 0)
    return [tuple(sorted(group)) for group in groups if group]


def _worker(job: LoadJob, results: Connection) -> None:
    """A forked loader: progress after every batch, then its final state or its failure."""

    # What the parent left in this copy of its heap is its own: never collected here
    # (a finalizer could touch the parent's sockets or loop). Signals end this process.
    gc.freeze()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)

    def report(state: LoadState) -> None:
        results.send(("progress", dict(state.positions), dict(state.highwaters), state.counts))

    try:
        state = asyncio.run(load_in_process(job, report))
    except BaseException as error:  # every failure reaches the parent, which ends the load
        results.send(("failed", f"{type(error).__name__}: {error}"))
    else:
        results.send(("done", state.positions, state.highwaters, state.counts))
    finally:
        results.close()


@dataclass
class _Worker:
    index: int
    process: Any
    results: Connection
    state: LoadState = field(default_factory=LoadState)
    done: bool = False


async def load_in_parallel(
    jobs: Sequence[LoadJob], on_progress: Callable[[LoadState], None]
) -> LoadState:
    """Run each job in a forked worker; the merged state once every one is done.

    Raises `LoadFailed` (after killing the others) when a worker fails or dies.
    """
    context = multiprocessing.get_context("fork")
    workers: list[_Worker] = []
    try:
        for index, job in enumerate(jobs):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker, args=(job, sender), name=f"awooop-rebuild-{index}", daemon=True
            )
            process.start()
            sender.close()
            workers.append(_Worker(index, process, receiver))
        while not all(w.done for w in workers):
            moved = False
            for worker in workers:
                moved |= _take_messages(worker)
            if moved:
                on_progress(_merged(workers))
            await asyncio.sleep(_POLL_SECONDS)
        return _merged(workers)
    finally:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
            worker.results.close()


def _take_messages(worker: _Worker) -> bool:
    moved = False
    while not worker.done and worker.results.poll():
        try:
            message = worker.results.recv()
        except EOFError:
            raise LoadFailed(
                f"rebuild worker {worker.index} ended without a result "
                f"(exit {worker.process.exitcode})"
            ) from None
        if message[0] == "failed":
            raise LoadFailed(f"rebuild worker {worker.index}: {message[1]}")
        _kind, positions, highwaters, counts = message
        worker.state = LoadState(positions, highwaters, counts)
        worker.done = message[0] == "done"
        moved = True
    return moved


def _merged(workers: Sequence[_Worker]) -> LoadState:
    merged = LoadState()
    for worker in workers:
        merged.positions.update(worker.state.positions)
        merged.highwaters.update(worker.state.highwaters)
        merged.counts.add(worker.state.counts)
    return merged


MAX_DEFAULT_WORKERS = 8
"""Each loader holds a connection and a log reader: the default stops here."""


def default_workers() -> int:
    """One worker per core the process may use, at least one and at most eight."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform can tell which cores a process may use
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))

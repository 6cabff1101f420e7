"""Reading partitions from chosen offsets up to chosen stops, without joining a group.

Operator commands (`projector rebuild`, `audit export`, `dlq list`) and tests read
the log this way: every partition assigned by hand, seeked, and fetched in large
batches until each one reaches its stop. A stop is either an offset given by the
caller (the live projector's stored offsets) or the high watermark the fetch
responses report: the embedded broker answers `end_offsets()` wrongly (it counts
batches, not records), the fetch high watermark is right.

A partition that reached its stop is paused, so one slow partition never makes
the others overshoot. Records at or past a partition's stop are never yielded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from awooop.contracts.registries.topics import MAX_RECORD_BYTES, topic
from awooop.infra.settings import KafkaSettings

Record: TypeAlias = Any
"""An aiokafka `ConsumerRecord` (bytes key and value); aiokafka ships no type hints."""
Offsets = dict[TopicPartition, int]


class LogNotReadToEnd(TimeoutError):
    """Some partitions did not reach their stop in time; says which and where they are."""


def partitions_of(topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the registry topics `topics`, in topic and partition order."""
    return [TopicPartition(name, p) for name in topics for p in range(topic(name).partitions)]


class LogReader:
    """A group-less reader of `partitions`, starting at `starts` (default 0).

    `group_id`, when given, is only where `commit()` records progress (for lag
    displays): the reader never joins that group, so nothing rebalances it.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        partitions: Iterable[TopicPartition],
        *,
        starts: Mapping[TopicPartition, int] | None = None,
        group_id: str | None = None,
        client_id: str = "awooop-log-reader",
        fetch_max_wait_ms: int | None = None,
    ) -> None:
        self.partitions = sorted(set(partitions))
        self._starts = dict(starts or {})
        self._settings = settings
        self._group_id = group_id
        self._client_id = client_id
        self._fetch_max_wait_ms = fetch_max_wait_ms or settings.fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self.positions: Offsets = {}
        """The next offset to read, per partition (only records before it were yielded)."""
        self.highwaters: Offsets = {}
        """The last high watermark a fetch reported, per partition."""

    async def __aenter__(self) -> LogReader:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap,
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="none",
            max_partition_fetch_bytes=MAX_RECORD_BYTES + 64 * 1024,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(self.partitions)
        for tp in self.partitions:
            start = self._starts.get(tp, 0)
            consumer.seek(tp, start)
            self.positions[tp] = start
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def lag(self) -> Offsets:
        """Records between each partition's position and its last known high watermark."""
        return {
            tp: max(0, self.highwaters[tp] - self.positions[tp])
            for tp in self.partitions
            if tp in self.highwaters
        }

    async def batches(
        self,
        stops: Mapping[TopicPartition, int] | None = None,
        *,
        max_records: int = 5000,
        within: float | None = None,
    ) -> AsyncIterator[list[Record]]:
        """Batches of records, each partition in offset order, until every partition
        reached its stop: `stops[tp]` when given (a partition absent from `stops` has
        nothing to read), else the high watermark its fetches report.

        Raises `LogNotReadToEnd` when `within` seconds pass first.
        """
        consumer = self._consumer
        assert consumer is not None, "use the reader as `async with`"
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        consumer.resume(*self.partitions)
        try:
            while pending := self._pending(stops):
                consumer.pause(*(set(self.partitions) - pending))
                fetched = await consumer.getmany(*pending, timeout_ms=200, max_records=max_records)
                batch: list[Record] = []
                for tp, records in fetched.items():
                    stop = stops.get(tp, 0) if stops is not None else None
                    kept = [r for r in records if stop is None or r.offset < stop]
                    batch.extend(kept)
                    if kept:
                        self.positions[tp] = kept[-1].offset + 1
                    if stop is not None and len(kept) < len(records):
                        consumer.seek(tp, stop)  # never read past the stop later
                for tp in pending:
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        self.highwaters[tp] = highwater
                    if not fetched.get(tp):
                        # Nothing fetched: the position may still have moved on
                        # (over a transaction marker or a compacted gap).
                        self.positions[tp] = max(self.positions[tp], await consumer.position(tp))
                if batch:
                    yield batch
                if deadline is not None and loop.time() > deadline and self._pending(stops):
                    behind = {
                        f"{tp.topic}[{tp.partition}]": (self.positions[tp], self._stop(tp, stops))
                        for tp in sorted(self._pending(stops))
                    }
                    raise LogNotReadToEnd(f"partitions not read to their stop: {behind}")
        finally:
            consumer.resume(*self.partitions)

    def _stop(self, tp: TopicPartition, stops: Mapping[TopicPartition, int] | None) -> int | None:
        if stops is not None:
            return stops.get(tp, 0)
        return self.highwaters.get(tp)

    def _pending(self, stops: Mapping[TopicPartition, int] | None) -> set[TopicPartition]:
        pending = set()
        for tp in self.partitions:
            stop = self._stop(tp, stops)
            if stop is None or self.positions[tp] < stop:
                pending.add(tp)
        return pending

    async def follow(self, *, max_records: int = 500) -> AsyncIterator[list[Record]]:
        """Batches of new records as they arrive, for as long as the caller reads.

        Every partition is read on from its position; an empty fetch yields nothing.
        """
        consumer = self._consumer
        assert consumer is not None, "use the reader as `async with`"
        consumer.resume(*self.partitions)
        while True:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            batch: list[Record] = []
            for tp, records in fetched.items():
                if records:
                    batch.extend(records)
                    self.positions[tp] = records[-1].offset + 1
                if (highwater := consumer.highwater(tp)) is not None:
                    self.highwaters[tp] = highwater
            if batch:
                yield batch

    async def read_all(
        self, stops: Mapping[TopicPartition, int] | None = None, *, within: float | None = None
    ) -> list[Record]:
        """Every record up to the stops, in fetch order (each partition in offset order)."""
        found: list[Record] = []
        async for batch in self.batches(stops, within=within):
            found.extend(batch)
        return found

    async def commit(self) -> None:
        """Record the positions under `group_id` (for lag displays only)."""
        assert self._consumer is not None
        assert self._group_id is not None
        await self._consumer.commit({tp: n for tp, n in self.positions.items() if n > 0})

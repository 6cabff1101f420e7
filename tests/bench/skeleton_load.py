"""Skeleton runs pushed through the platform with bounded concurrency, each timed from its
produce to the moment the read model first shows it `completed`.

One Telegram user per run, so no run is ever a double text. A run is in
flight from the call that produces its inbound record until a poll of
`projector.runs` (every `poll_interval` seconds, over the admin connection,
which RLS does not filter) sees it in a terminal state; a freed slot is
refilled at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.settings import KafkaSettings

BOT = "7000"
FIRST_USER = 500_000
TERMINAL = ("completed", "failed", "cancelled", "timeout")
POLL_APPLICATION = "awooop-bench-poller"

FINISHED_RUNS = """
SELECT trigger_text, state FROM projector.runs
WHERE project_id = $1 AND trigger_text = ANY($2::text[]) AND state = ANY($3::text[])
"""


@dataclass(frozen=True, slots=True)
class RunTiming:
    marker: str
    state: str
    produced: float
    """Monotonic clock at the produce call."""
    produced_wall: float
    """Wall clock (epoch seconds) at the produce call."""
    seen: float
    """Monotonic clock of the poll that first saw the run finished."""

    @property
    def produce_to_timeline(self) -> float:
        return self.seen - self.produced


@dataclass(slots=True)
class LoadResult:
    runs: list[RunTiming] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Every inbound record produced (key, value), reused by the raw Kafka baseline."""

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def record_bytes(self) -> float:
        """Mean size of an inbound record, key and value."""
        return sum(len(k) + len(v) for k, v in self.records) / max(1, len(self.records))

    @property
    def failed(self) -> list[RunTiming]:
        return [run for run in self.runs if run.state != "completed"]


@dataclass(frozen=True, slots=True)
class _InFlight:
    produced: float
    produced_wall: float


class SkeletonLoad:
    """`runs` Telegram messages of one project, at most `concurrency` unfinished at once."""

    def __init__(
        self,
        kafka: KafkaSettings,
        database_url: str,
        *,
        project: str,
        bot: str = BOT,
        label: str = "bench",
        first: int = 0,
        runs: int,
        concurrency: int,
        poll_interval: float = 0.02,
        stall_after: float = 120.0,
        rate: float | None = None,
    ) -> None:
        self._kafka = kafka
        self._database_url = database_url
        self.project = project
        self.bot = bot
        self.label = label
        self.first = first
        """Where this load's update ids and users start, so two loads of one project
        never share a message id or a person."""
        self.runs = runs
        self.concurrency = concurrency
        self._poll_interval = poll_interval
        self._stall_after = stall_after
        self.rate = rate
        """Runs produced per second, open loop, however many are in flight (`concurrency`
        then only caps a stalled platform); None: closed loop, `concurrency` in flight."""
        self._in_flight: dict[str, _InFlight] = {}
        self._acks: list[asyncio.Future[Any]] = []
        self.result = LoadResult()

    async def drive(
        self,
        check_alive: Callable[[], None],
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_finish: Callable[[], Awaitable[None]] | None = None,
    ) -> LoadResult:
        """Push every run through. `on_start()` is awaited just before the first produce
        and `on_finish()` right after the last completion, while the poll connection is
        still open (the CPU snapshots); `check_alive()` raises when a platform process
        died."""
        conn = await asyncpg.connect(
            self._database_url, server_settings={"application_name": POLL_APPLICATION}
        )
        producer = create_producer(self._kafka, client_id="bench-load")
        await producer.start()
        try:
            if on_start is not None:
                await on_start()
            await self._loop(conn, producer, check_alive)
            if on_finish is not None:
                await on_finish()
            # Every produce was acknowledged (a lost one would have stalled the loop).
            await asyncio.gather(*self._acks)
        finally:
            await producer.stop()
            await conn.close()
        return self.result

    async def _loop(
        self,
        conn: asyncpg.Connection,
        producer: AIOKafkaProducer,
        check_alive: Callable[[], None],
    ) -> None:
        result = self.result
        produced = 0
        result.started = last_progress = last_check = time.monotonic()
        while produced < self.runs or self._in_flight:
            while produced < self._due(result.started) and len(self._in_flight) < self.concurrency:
                await self._produce(producer, produced)
                produced += 1
            await asyncio.sleep(self._poll_interval)
            finished = await self._collect(conn)
            now = time.monotonic()
            if finished:
                last_progress = result.finished = now
            elif now - last_progress > self._stall_after:
                raise AssertionError(
                    f"no run finished for {self._stall_after:.0f}s; {len(result.runs)} of "
                    f"{self.runs} done, {len(self._in_flight)} in flight"
                )
            if now - last_check > 1.0:
                check_alive()
                last_check = now

    def _due(self, started: float) -> int:
        """Runs that should have been produced by now."""
        if self.rate is None:
            return self.runs
        return min(self.runs, int((time.monotonic() - started) * self.rate) + 1)

    async def _produce(self, producer: AIOKafkaProducer, index: int) -> None:
        marker = f"{self.label} run {index}"
        key, value = telegram_record(
            project=self.project,
            bot=self.bot,
            update_id=self.first + index + 1,
            user=str(FIRST_USER + self.first + index),
            text=marker,
        )
        self._in_flight[marker] = _InFlight(time.monotonic(), time.time())
        self._acks.append(await producer.send(Topics.CHANNEL_INBOUND.name, value, key=key))
        self.result.records.append((key, value))

    async def _collect(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(FINISHED_RUNS, self.project, list(self._in_flight), list(TERMINAL))
        seen = time.monotonic()
        for row in rows:
            started = self._in_flight.pop(row["trigger_text"])
            self.result.runs.append(
                RunTiming(
                    marker=row["trigger_text"],
                    state=row["state"],
                    produced=started.produced,
                    produced_wall=started.produced_wall,
                    seen=seen,
                )
            )
        return len(rows)

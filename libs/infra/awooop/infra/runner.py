"""The service runner: one process's pool, migrations, topics, epoch, consumer and relay.

Start-up order matters: the role, schema and migrations; the registry topics
(created before any client names them); the broker epoch (adopted on first
start, compared afterwards); for a service that reads contracts, the contract
reader caught up to the high watermarks of the contract topic; only then the
BatchConsumer and the relay, so no record is decided before the contracts
active at start are known. A
background watch re-reads the epoch and the partition counts; a mismatch
halts consuming and relaying, logs `E-BROKER-RESET` and keeps the process
unready until an operator recovers it: `awooop recover broker-reset` writes
the new broker's epoch into this service's schema, the recovery watch of the
halted runner sees it there and sets `recovered`, and the process restarts
the runner in place (`restart()`) on the new broker.

Every long-lived task (consumer, relay, epoch watch, background jobs) is
supervised: one that ends with an exception, or ends at all while nothing
asked it to, turns the process unready, logs `E-SERVICE-CRASHED` with the
cause and sets `failed`, on which the process exits non-zero so that its
supervisor restarts it. A halt is not a crash: a halted process stays up,
unready, for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import asyncpg

from awooop.contracts.registries.errors import E_BROKER_RESET, E_SERVICE_CRASHED
from awooop.contracts.registries.topics import consumer_group
from awooop.infra.contracts.reader import ContractReader
from awooop.infra.kafka import admin as topic_admin
from awooop.infra.kafka.consumer import BROKER_EPOCH, BatchConsumer, BatchProcessor
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.epoch import EPOCH_TOPIC, adopt_epoch, read_broker_epoch, stored_epoch
from awooop.infra.kafka.offsets import KafkaOffsetStore, OffsetStore, PostgresOffsetStore
from awooop.infra.kafka.producer import DLQ_REQUEST_BYTES, create_producer
from awooop.infra.logging import get_logger
from awooop.infra.metrics import ServiceMetrics
from awooop.infra.postgres import inbox
from awooop.infra.postgres.pools import create_pool
from awooop.infra.postgres.provisioning import schema_behind
from awooop.infra.readiness import Readiness
from awooop.infra.relay import CrashPoint, OutboxRelay
from awooop.infra.settings import Settings

log = get_logger(__name__)

STOP_SECONDS = 25.0
"""How long a service's stop may take (the platform waits 30 s for its exit)."""
PART_SECONDS = 1.0
"""The least time each of the five parts after the tasks gets to stop."""
TASK_SECONDS = STOP_SECONDS - 5 * PART_SECONDS
"""How long the tasks get: the gateway executor's own shutdown takes up to 20 s (its
calls in flight, its last answers, its MCP sessions)."""


BROKER_UNREACHABLE = "broker-unreachable"
PATIENT_FETCH_WAIT_MS = 250
PATIENT_FETCH_MIN_BYTES = 256 * 1024
CRASHED = "crashed"


class SchemaBehind(RuntimeError):
    """The service's schema has not reached its migrations (`E-SCHEMA-BEHIND`)."""


@dataclass(frozen=True)
class ServiceSpec:
    """What a service runs: its schema's migration branches, inputs and processor."""

    service: str
    topics: Sequence[str] = ()
    processor: Callable[[ServiceRunner | None], BatchProcessor] | None = None
    """Builds the processor: with the runner that runs it, or with None outside any
    running service (`awooop dlq replay`), where nothing of a runner is there to hand
    work on to."""
    branches: Sequence[str] = ("store",)
    offsets: Literal["kafka", "postgres"] = "kafka"
    relay: bool = True
    group: str = ""
    background: Sequence[Callable[[ServiceRunner], Awaitable[None]]] = ()
    migrations: Sequence[Path] = ()
    extra_roles: Sequence[str] = ()
    """Login roles this service's migrations grant to (e.g. `awooop_api`), made first."""
    reads_contracts: bool = False
    """Run a contract reader (`runner.contracts`) and start consuming once it caught up;
    the schema then needs the `contracts` migration branch."""
    patient_fetch: bool = False
    """A service that acts at a person's pace and handles few of the records it reads:
    its consumer lets the broker gather records for up to `PATIENT_FETCH_WAIT_MS` (or
    `PATIENT_FETCH_MIN_BYTES` of them) per fetch, so it fetches far less often."""

    @property
    def consumer_group(self) -> str:
        return self.group or consumer_group(self.service)


class StopLeftBehind(RuntimeError):
    """A restart found parts its stop gave up on: the process must exit to start clean."""


class ServiceRunner:
    """Runs one service in this process; `readiness` backs its `/readyz`."""

    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        *,
        relay_crash_point: CrashPoint | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.readiness = Readiness()
        self.metrics = ServiceMetrics(self)
        """What `/metrics` serves; services add counters of their own (`metrics.counter`)."""
        self.dead_letters: DeadLetters | None = None
        self.instance_id = f"{spec.service}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        """Identifies this process, e.g. as a lease owner."""
        self._relay_crash_point = relay_crash_point
        self.failed = asyncio.Event()
        """Set when a supervised task crashed; `failure` says which and why."""
        self.failure: str | None = None
        self.left_behind: list[str] = []
        """Parts a stop gave up on (still running, or never closed)."""
        self._fresh_parts()

    def _fresh_parts(self) -> None:
        """What a start builds and a stop ends: none of it yet."""
        self.pool: asyncpg.Pool | None = None
        self.consumer: BatchConsumer | None = None
        self.relay: OutboxRelay | None = None
        self.epoch: str | None = None
        self.contracts: ContractReader | None = None
        """The live contracts, for a service that reads them (set before its processor
        is built)."""
        self._dlq_producer = create_producer(
            self.settings.kafka,
            client_id=f"{self.spec.service}-dlq",
            max_request_size=DLQ_REQUEST_BYTES,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stopped = False
        self._halting = False
        self.recovered = asyncio.Event()
        """Set when a halted service finds the broker's new epoch recorded in its schema
        (`awooop recover broker-reset` wrote it): time to `restart()`."""

    async def start(self) -> None:
        """Start every part of the service; `SchemaBehind` when `awooop migrate` is due."""
        self._stopped = False
        spec, settings = self.spec, self.settings
        # A missing or malformed key ring refuses the start before anything is opened.
        ring = settings.contract_key_ring() if spec.reads_contracts else None
        url = settings.service_database_url(spec.service)
        try:
            self.pool = await create_pool(url, spec.service, name=f"awooop-{spec.service}")
        except asyncpg.InvalidAuthorizationSpecificationError as error:
            raise SchemaBehind(
                f"cannot log in as awooop_{spec.service} ({error}): run `awooop migrate` to "
                f"make the role, and check AWOOOP_DB_PASSWORD_{spec.service.upper()}"
            ) from error
        async with self.pool.acquire() as conn:
            if behind := await schema_behind(conn, spec):
                raise SchemaBehind(f"{behind}: run `awooop migrate` before starting the service")
        if "store" in spec.branches:
            async with self.pool.acquire() as conn:
                await inbox.maintain_partitions(conn, spec.service, dt.datetime.now(dt.UTC))
        await topic_admin.ensure_topics(settings.kafka)
        broker_epoch = await read_broker_epoch(settings.kafka, create=True)
        assert broker_epoch is not None
        self.epoch = await adopt_epoch(self.pool, broker_epoch)
        self.readiness.started()
        if self.epoch != broker_epoch:
            self._halt(f"recorded epoch {self.epoch}, broker has {broker_epoch}")
            return
        await self._dlq_producer.start()
        if ring is not None:
            self.contracts = ContractReader(
                settings.kafka,
                ring,
                self.pool,
                client_id=f"{spec.service}-contracts",
            )
            await self.contracts.catch_up()
            self._supervise(self.contracts.follow(), "background:contract-reader")
        if spec.relay:
            self.relay = OutboxRelay(
                self.pool,
                spec.service,
                lambda: create_producer(settings.kafka, client_id=f"{spec.service}-relay"),
                crash_point=self._relay_crash_point,
                readiness=self.readiness,
            )
            self._supervise(self.relay.run(), "relay")
        if spec.processor is not None and spec.topics:
            self.consumer = self._build_consumer(spec.processor(self))
            await self.consumer.start()
            self._supervise(self.consumer.run(), "consumer")
        self._supervise(self._watch_epoch(), "epoch-watch")
        self._supervise(self.metrics.sample_forever(), "background:metrics-sampler")
        if "store" in spec.branches:
            maintenance = inbox.maintain_forever(
                self.pool,
                spec.service,
                lambda: dt.datetime.now(dt.UTC),
                settings.inbox_maintenance_seconds,
            )
            self._supervise(maintenance, "background:inbox-maintenance")
        for job in spec.background:
            self._supervise(job(self), f"background:{getattr(job, '__name__', 'job')}")

    def _supervise(self, job: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(job)
        task.set_name(name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        if task.cancelled():
            if self.halted:
                return  # a halt cancels the relay and the background jobs
            cause = "cancelled"
        elif (error := task.exception()) is not None:
            cause = f"{type(error).__name__}: {error}"
            log.error(
                "task_crashed",
                code=E_SERVICE_CRASHED.code,
                task=task.get_name(),
                error=repr(error),
                exc_info=error,
            )
        elif self.halted:
            return  # the consumer and the epoch watch end after a halt
        else:
            cause = "ended while the service was running"
        self.crash(f"{task.get_name()}: {cause}")

    def crash(self, reason: str) -> None:
        """Turn unready for good and ask the process to exit non-zero (`failed`)."""
        detail = f"{E_SERVICE_CRASHED.code}: {reason}"
        if self.failure is None:
            self.failure = detail
            log.error("service_crashed", code=E_SERVICE_CRASHED.code, reason=reason)
        self.readiness.hold(CRASHED, detail)
        self.failed.set()

    def _build_consumer(self, processor: BatchProcessor) -> BatchConsumer:
        assert self.pool is not None
        group = self.spec.consumer_group
        store: OffsetStore = (
            PostgresOffsetStore(self.pool, group)
            if self.spec.offsets == "postgres"
            else KafkaOffsetStore()
        )
        kafka = self.settings.kafka
        if self.spec.patient_fetch:
            wait = max(kafka.fetch_max_wait_ms, PATIENT_FETCH_WAIT_MS)
            kafka = replace(kafka, fetch_max_wait_ms=wait)
        return BatchConsumer(
            settings=kafka,
            fetch_min_bytes=PATIENT_FETCH_MIN_BYTES if self.spec.patient_fetch else 1,
            group=group,
            topics=self.spec.topics,
            processor=processor,
            pool=self.pool,
            dead_letters=self._dead_letters(group),
            schema=self.spec.service,
            readiness=self.readiness,
            offset_store=store,
            epoch_confirmed=self.epoch_confirmed,
            on_committed=self.relay.wake if self.relay else None,
            on_halt=self._halt,
        )

    def _dead_letters(self, group: str) -> DeadLetters:
        self.dead_letters = DeadLetters(self._dlq_producer, group)
        return self.dead_letters

    def dead_letter_counts(self) -> dict[str, int]:
        """DLQ entries this process wrote, by error code."""
        return dict(self.dead_letters.by_code) if self.dead_letters is not None else {}

    async def epoch_confirmed(self) -> bool:
        """True while the broker still holds the epoch this service recorded."""
        try:
            current = await read_broker_epoch(self.settings.kafka, create=False, wait_seconds=5.0)
        except Exception as error:
            log.warning("epoch_read_failed", error=repr(error))
            return False
        return current is not None and current == self.epoch

    async def _watch_epoch(self) -> None:
        admin = topic_admin.admin_client(self.settings.kafka)
        await admin.start()
        try:
            while not self.halted:
                await asyncio.sleep(self.settings.epoch_check_seconds)
                try:
                    counts = await topic_admin.partition_counts(admin)
                    if EPOCH_TOPIC not in counts:
                        self._halt(f"{EPOCH_TOPIC} is gone")
                        break
                    topic_admin.check_partition_counts(counts)
                    current = await read_broker_epoch(self.settings.kafka, create=False)
                except topic_admin.TopicPartitionMismatch as mismatch:
                    self._halt(str(mismatch))
                    break
                except Exception as error:
                    self.readiness.hold(BROKER_UNREACHABLE, repr(error))
                    continue
                self.readiness.release(BROKER_UNREACHABLE)
                if current != self.epoch:
                    self._halt(f"recorded epoch {self.epoch}, broker has {current}")
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    @property
    def halted(self) -> bool:
        return BROKER_EPOCH in self.readiness.reasons

    def _halt(self, reason: str) -> None:
        if self._halting:
            return
        self._halting = True
        log.error("broker_reset", code=E_BROKER_RESET.code, reason=reason)
        code = E_BROKER_RESET.code
        detail = reason if reason.startswith(code) else f"{code}: {reason}"
        self.readiness.hold(BROKER_EPOCH, detail)
        if self.consumer is not None:
            self.consumer.halt(detail)
        for task in self._tasks:
            if task.get_name() == "relay" or task.get_name().startswith("background"):
                task.cancel()
        self._supervise(self._await_recovery(), "recovery-watch")

    async def _await_recovery(self) -> None:
        """While halted: set `recovered` once this schema records the broker's epoch.

        Only `awooop recover broker-reset` writes an epoch over a recorded one, after it
        refilled this schema's outbox (or rebuilt the read models); nothing here
        adopts the new broker by itself.
        """
        assert self.pool is not None
        while not self.recovered.is_set():
            await asyncio.sleep(self.settings.epoch_check_seconds)
            try:
                recorded = await stored_epoch(self.pool)
                # None while the new broker has no epoch topic: the read asks first, so
                # it never auto-creates the topic with the broker's partition count.
                broker = await read_broker_epoch(self.settings.kafka, create=False)
            except Exception as error:  # an outage: the next round asks again
                log.warning("recovery_check_failed", error=repr(error))
                continue
            if recorded is not None and recorded != self.epoch and recorded == broker:
                log.info("broker_recovered", epoch=recorded, previous=self.epoch)
                self.recovered.set()

    async def restart(self) -> None:
        """Stop everything and start again from the pool up: the recovered broker's epoch
        is adopted, consumers start over from the refilled topics (their inboxes absorb
        what they applied before), the relay publishes what the outbox holds."""
        await self.stop()
        if self.left_behind:
            # They may still run beside the new parts: the process exits instead.
            raise StopLeftBehind(f"the stop left {', '.join(self.left_behind)} behind")
        self._fresh_parts()
        self.readiness.restarting()
        await self.start()

    async def stop(self) -> None:
        """Stop every part, once per start: the tasks within `TASK_SECONDS`, then each
        other part within what is left of `STOP_SECONDS` (at least `PART_SECONDS`). A
        part that does not stop in time is logged by name and left behind
        (`left_behind`): transactions it held roll back with their connections, and the
        broker expires a member that never left."""
        if self._stopped:
            return  # this start's parts are stopped already (or left behind)
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_SECONDS
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=TASK_SECONDS)
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: its end was already reported, or is moot
            if pending:
                for task in pending:
                    # A task left behind must never report its end to a restarted runner.
                    task.remove_done_callback(self._task_done)
                self._left_behind("tasks", sorted(task.get_name() for task in pending))
        if self.consumer is not None:
            await self._within(deadline, "consumer", self.consumer.stop())
        if self.relay is not None:
            await self._within(deadline, "relay", self.relay.close())
        if self.contracts is not None:
            await self._within(deadline, "contract reader", self.contracts.close())
        await self._within(deadline, "dead-letter producer", self._dlq_producer.stop())
        if self.pool is not None and not await self._within(deadline, "pool", self.pool.close()):
            self.pool.terminate()
        self._stopped = True

    async def _within(self, deadline: float, part: str, stopping: Awaitable[object]) -> bool:
        """Await one part's stop until `deadline` (or `PART_SECONDS`, if later): False,
        logged, when it did not finish or failed (it is then left as it is)."""
        remaining = max(PART_SECONDS, deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(remaining):
                await stopping
        except TimeoutError:
            self._left_behind(part)
            return False
        except Exception as error:
            log.warning("service_stop_failed", part=part, error=repr(error))
            return False
        return True

    def _left_behind(self, part: str, tasks: list[str] | None = None) -> None:
        self.left_behind.append(part)
        log.error("service_stop_timed_out", part=part, tasks=tasks)

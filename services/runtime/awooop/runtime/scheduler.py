"""The run scheduler of one runtime process: a bounded step pool and its claim loop.

Handlers lease runs to this process: a consumer batch takes a scripted step in its
own transaction (`take_inline`) and submits the rest; the claim loop leases
what nobody holds (expired leases of dead processes, timers, timeouts) and
renews the leases this process holds at a third of their length. A step
commits only while its lease epoch still holds, so a step of a process that
lost its lease changes nothing.

An outage (`is_database_outage`) is never a failed attempt: a step keeps its
lease and retries with capped backoff until the database answers, and the
claim loop backs off the same way. Only a step whose own code raised lets its
lease run out, so the claim loop retries it as a counted attempt. Anything
else escaping the claim loop ends it (the runner reports a dead task).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable

import asyncpg

from awooop.infra.contracts.reader import ContractSource
from awooop.infra.logging import get_logger
from awooop.infra.metrics import Counter
from awooop.infra.postgres.errors import VersionConflict, is_database_outage
from awooop.runtime import timers
from awooop.runtime.adapters import runs
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.budgeting import StepBudget
from awooop.runtime.providers import ProviderCatalogue
from awooop.runtime.steps import Inline, RemoteCall, StepExecutor, Taken

log = get_logger(__name__)

STEP_GROUP = 32
"""Queued steps one worker takes together, in one transaction (`StepExecutor.steps`)."""
PROGRESS_PER_TICK = 256
"""Progress messages one claim tick sends at most (the rest wait for the next tick)."""

Clock = Callable[[], dt.datetime]


class StepPool:
    """Runs leased steps, at most `workers` at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        owner: str,
        wake_relay: Callable[[], None],
        *,
        contracts: ContractSource,
        clock: Clock,
        service: str,
        workers: int = 16,
        lease_seconds: float = 30.0,
        step_delay: float = 0.0,
        claim_interval: float = 0.5,
        max_backoff: float = 5.0,
        claimed: Counter | None = None,
        providers: ProviderCatalogue | None = None,
        inline_steps: bool = True,
    ) -> None:
        self._pool = pool
        self._claimed = claimed or Counter("runtime_runs_claimed", "runs leased to this process")
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = lease_seconds / 3
        self._contracts, self._clock, self._service = contracts, clock, service
        self._wake_relay = wake_relay
        self.executor = StepExecutor(
            owner=owner,
            contracts=contracts,
            providers=providers or ProviderCatalogue(),
            budget=StepBudget(contracts, service),
            clock=clock,
            service=service,
            lease_seconds=lease_seconds,
            wake_relay=wake_relay,
        )
        self._workers = workers
        self._step_delay = step_delay
        self._claim_interval = claim_interval
        self._max_backoff = max_backoff
        self._queue: asyncio.Queue[Lease] = asyncio.Queue()
        self._asking = asyncio.Semaphore(workers)
        """Remote steps whose provider is being asked: at most `workers` at once."""
        self._answering: set[asyncio.Task[None]] = set()
        self._held: dict[uuid.UUID, Lease] = {}
        self._inline = inline_steps and not step_delay
        """Batches take scripted steps themselves; not when steps are slowed on purpose."""
        self._killing: set[asyncio.Task[None]] = set()
        self.heartbeats = 0
        """Heartbeat statements sent (each renews every lease held at that moment)."""
        self.outage_retries = 0
        """Steps retried because the database was out (never counted as attempts)."""

    def submit(self, lease: Lease, *, claimed: bool = True) -> None:
        """Queue a leased step; `claimed` is false for a run's next step under the same hold."""
        if claimed:
            self._claimed.add()
        self._held[lease.run_id] = lease
        self._queue.put_nowait(lease)

    async def take_inline(self, conn: asyncpg.Connection, leases: list[Lease]) -> Inline:
        """The steps of `leases` a batch takes in its own transaction (`conn`), and the
        rest, for `after_inline` to submit once it committed."""
        if not self._inline:
            return Inline(0, leases, [], [])
        return await self.executor.inline(conn, leases)

    def after_inline(self, taken: Inline) -> None:
        """The batch that took `taken` committed: submit what it left, count what it did."""
        if taken.decided:
            self._claimed.add(taken.decided)
            self.executor.committed += taken.decided
        for lease in taken.handed:
            self.submit(lease)
        for lease in taken.follow_ups:
            self.submit(lease, claimed=False)
        if taken.crossed:
            task = asyncio.create_task(self._kill_spent(taken.crossed))
            self._killing.add(task)
            task.add_done_callback(self._killing.discard)

    async def _kill_spent(self, crossed: list[tuple[str, str]]) -> None:
        try:
            await self.executor.kill_spent(self._pool, crossed)
        except Exception as error:
            log.error("kill_switch_failed", error=repr(error))

    def _release(self, lease: Lease) -> None:
        # A newer lease of the same run (the timeout taking over a step) stays held.
        if self._held.get(lease.run_id) == lease:
            del self._held[lease.run_id]

    async def run(self) -> None:
        workers = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        try:
            await self._claim_loop()
        finally:
            for task in [*workers, *self._answering, *self._killing]:
                task.cancel()
            for task in [*workers, *self._answering, *self._killing]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_beat: float | None = None
        backoff = self._claim_interval
        while True:
            try:
                started = loop.time()
                if self._held and (
                    last_beat is None or started - last_beat >= self.heartbeat_seconds
                ):
                    held = list(self._held.values())
                    await runs.extend_leases(self._pool, self.owner, held, self.lease_seconds)
                    self.heartbeats += 1
                    last_beat = started
                room = max(0, self._workers * 2 - self._queue.qsize() - len(self._answering))
                if room:
                    async with self._pool.acquire() as conn, conn.transaction():
                        leases = await runs.claim_due(
                            conn, self.owner, room, self.lease_seconds, list(self._held)
                        )
                    for lease in leases:
                        self.submit(lease)
                await self._timers(room)
            except Exception as error:
                if not is_database_outage(error):
                    raise
                log.warning("claim_outage", error=repr(error), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = self._claim_interval
            await asyncio.sleep(self._claim_interval)

    async def _timers(self, room: int) -> None:
        """Start waiting messages of idle subjects; send due progress messages.

        An outage propagates (the claim loop backs off); any other failure is logged and
        the loop goes on, so one bad waiting message never stops claims and timeouts."""
        try:
            started = await self._drain(room)
            for lease in started:
                self.submit(lease)
            async with self._pool.acquire() as conn, conn.transaction():
                sent = await timers.send_progress(
                    conn, now=self._clock(), service=self._service, limit=PROGRESS_PER_TICK
                )
        except Exception as error:
            if is_database_outage(error):
                raise
            log.error("timers_failed", error=repr(error))
            return
        if started or sent:
            self._wake_relay()

    async def _drain(self, room: int) -> list[Lease]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await timers.drain_queues(
                    conn,
                    self._contracts.view,
                    now=self._clock(),
                    service=self._service,
                    owner=self.owner,
                    lease_seconds=self.lease_seconds,
                    limit=max(room, 1),
                )
        except VersionConflict:
            # A batch started a run for one of these subjects meanwhile: the next tick
            # sees it active, and its queue waits behind it.
            return []

    async def _work(self) -> None:
        while True:
            # What is queued already goes together: under load a worker's group grows,
            # and an idle pool still takes a lone step at once.
            group = [await self._queue.get()]
            while len(group) < STEP_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            taken = Taken([], [])
            try:
                taken = await self._steps_through_outages(group)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The step's own code failed: its lease runs out and the claim loop
                # retries the step as a counted attempt.
                log.warning("step_failed", run_id=str(group[0].run_id), error=repr(error))
            finally:
                asking = {lease for lease, _call in taken.remote}
                for lease in group:
                    if lease not in asking:
                        self._release(lease)
            for follow_up in taken.follow_ups:
                self.submit(follow_up, claimed=False)
            for lease, call in taken.remote:
                task = asyncio.create_task(self._answer(lease, call))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

    async def _answer(self, lease: Lease, call: RemoteCall) -> None:
        """A remote step's provider call and its commit, at most `workers` at once; its
        lease stays held (and renewed) until the answer is committed."""
        follow_up = None
        try:
            async with self._asking:
                follow_up = await self.executor.answer(self._pool, lease, call)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("step_failed", run_id=str(lease.run_id), error=repr(error))
        finally:
            self._release(lease)
        if follow_up is not None:
            self.submit(follow_up, claimed=False)

    async def _steps_through_outages(self, group: list[Lease]) -> Taken:
        if self._step_delay and not all(lease.timed_out for lease in group):
            await asyncio.sleep(self._step_delay)  # the provider's thinking, outside any lock
        backoff = self._claim_interval
        while True:
            try:
                return await self.executor.steps(self._pool, group)
            except Exception as error:
                if not is_database_outage(error):
                    raise
                self.outage_retries += 1
                log.warning(
                    "step_outage",
                    run_ids=[str(lease.run_id) for lease in group],
                    error=repr(error),
                    retry_in=backoff,
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    @property
    def steps(self) -> int:
        """Steps whose decision this process committed."""
        return self.executor.committed

"""The run scheduler of one runtime process: a bounded step pool and its claim loop.

Handlers lease runs to this process and submit them; the claim loop leases
what nobody holds (expired leases of dead processes, timers, timeouts). A
step commits only while its lease epoch still holds, so a step of a process
that lost its lease changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable

import asyncpg

from awooop.contracts.catalogue import builtin_catalogue
from awooop.infra.logging import bind_context, get_logger
from awooop.infra.postgres import event_store
from awooop.runtime.adapters import runs
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.domain.run import give_up, take_step
from awooop.runtime.recording import record

log = get_logger(__name__)


class StepPool:
    """Runs leased steps, at most `workers` at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        owner: str,
        wake_relay: Callable[[], None],
        *,
        workers: int = 16,
        lease_seconds: float = 30.0,
        step_delay: float = 0.0,
        claim_interval: float = 0.5,
    ) -> None:
        self._pool = pool
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._wake_relay = wake_relay
        self._workers = workers
        self._step_delay = step_delay
        self._claim_interval = claim_interval
        self._queue: asyncio.Queue[Lease] = asyncio.Queue()
        self._held: set[uuid.UUID] = set()
        self.steps = 0

    def submit(self, lease: Lease) -> None:
        self._held.add(lease.run_id)
        self._queue.put_nowait(lease)

    async def run(self) -> None:
        workers = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        try:
            await self._claim_loop()
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def _claim_loop(self) -> None:
        while True:
            try:
                await runs.extend_leases(
                    self._pool, self.owner, list(self._held), self.lease_seconds
                )
                room = max(0, self._workers * 2 - self._queue.qsize())
                if room:
                    async with self._pool.acquire() as conn, conn.transaction():
                        leases = await runs.claim_due(conn, self.owner, room, self.lease_seconds)
                    for lease in leases:
                        self.submit(lease)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("claim_failed", error=repr(error))
            await asyncio.sleep(self._claim_interval)

    async def _work(self) -> None:
        while True:
            lease = await self._queue.get()
            try:
                follow_up = await self._step(lease)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The lease runs out and the claim loop retries the step.
                log.warning("step_failed", run_id=str(lease.run_id), error=repr(error))
                follow_up = None
            finally:
                self._held.discard(lease.run_id)
            if follow_up is not None:
                self.submit(follow_up)

    async def _step(self, lease: Lease) -> Lease | None:
        catalogue, _revision = builtin_catalogue()
        if self._step_delay and not lease.timed_out:
            await asyncio.sleep(self._step_delay)  # the provider's thinking, outside any lock
        async with self._pool.acquire() as conn, conn.transaction():
            run = await runs.holds_lease(conn, lease, self.owner)
            if run is None or not run.active:
                return None  # the lease was lost, or the run ended meanwhile
            with bind_context(project_id=run.project_id, run_id=str(run.run_id)):
                now = dt.datetime.now(dt.UTC)
                if lease.timed_out or lease.attempt > lease.max_attempts:
                    decision = give_up(run, timed_out=lease.timed_out)
                else:
                    decision = take_step(run, catalogue.agent(run.agent_id), now)
                moved, events = record(decision, run.version, causation_id=None, now=now)
                await event_store.append(conn, events)
                follow_up = await runs.save_run(
                    conn,
                    moved,
                    last_event_id=events[-1].event_id,
                    lease_to=self.owner if decision.step_due else None,
                    lease_seconds=self.lease_seconds,
                )
        self.steps += 1
        self._wake_relay()
        return follow_up

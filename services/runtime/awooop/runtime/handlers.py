"""The runtime's Kafka processor: each batch folded into its runs in one transaction.

`STEPS` is where each event type is handled. Per batch, behind the inbox:
one statement locks every run row the batch touches (in id order), one the
waiting messages of its subjects, one reads which of its projects are killed, one
what is kept of the approvals it has events of;
the batch is decided in memory in partition-offset order (`domain.batch`), then
one statement per table writes it (`adapters.batch_writes`). It never calls a
remote model: when a step is due it leases the run to this process, takes the step
itself when the run's agent is scripted (in the same transaction, behind a savepoint),
and, once the batch committed, hands the other steps to the local step pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import asyncpg

from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord
from awooop.infra.processor import BatchContext, EventProcessor, envelopes_of
from awooop.runtime.adapters import (
    approval_messages,
    batch_writes,
    budget_ledger,
    queues,
    run_batch,
)
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.domain.batch import (
    MESSAGE,
    BatchFold,
    Step,
    approval_ids_of,
    fold_batch,
    lock_keys,
    tool_outcome,
)
from awooop.runtime.scheduler import Clock
from awooop.runtime.steps import Inline

STEPS: Mapping[str, Step] = {
    MESSAGE: BatchFold.message,
    "gateway.tool_call_succeeded": tool_outcome("succeeded"),
    "gateway.tool_call_blocked": tool_outcome("blocked"),
    "gateway.tool_call_failed": tool_outcome("failed"),
    "gateway.approval_required": BatchFold.approval_required,
    "approval.requested": BatchFold.approval_requested,
    "approval.vote_recorded": BatchFold.vote_recorded,
    "approval.granted": BatchFold.approval_granted,
    "approval.denied": BatchFold.approval_denied,
}


class StepHandoff(Protocol):
    """Where a batch's leased steps go once it committed: the process's `StepPool`, or,
    outside a runtime process, the claim loop of whichever one polls next
    (`awooop.runtime.claim_handoff`)."""

    owner: str
    lease_seconds: float

    async def take_inline(self, conn: asyncpg.Connection, leases: list[Lease]) -> Inline:
        """The steps of `leases` taken in the batch's transaction, and the rest."""
        ...

    def after_inline(self, taken: Inline) -> None:
        """The batch committed: the steps it left go their way."""
        ...


class RuntimeProcessor(EventProcessor):
    """A BatchProcessor over ingress messages, gateway outcomes and approval events,
    idempotent on `event_id`."""

    def __init__(
        self,
        pool: StepHandoff,
        *,
        contracts: ContractSource,
        clock: Clock,
        service: str,
        name: str | None = None,
    ) -> None:
        super().__init__(name or service, STEPS)
        self._pool = pool
        self.contracts = contracts
        self._clock = clock
        self._service = service

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        envelopes = envelopes_of(records)
        run_ids, subjects = lock_keys(envelopes)
        conn = context.conn
        locked = await run_batch.lock_runs(conn, run_ids, subjects)
        queued = await queues.lock_queues(conn, subjects)
        projects = sorted({project for project, _ in subjects})
        killed = await budget_ledger.killed(conn, projects) if projects else set()
        approvals = await approval_messages.load(conn, approval_ids_of(envelopes))
        writes = fold_batch(
            locked,
            envelopes,
            STEPS,
            contracts=self.contracts.view,
            now=self._clock(),
            service=self._service,
            queued=queued,
            killed=frozenset(killed),
            approvals=approvals,
        )
        leased = await batch_writes.write(
            conn,
            writes,
            context.append,
            owner=self._pool.owner,
            lease_seconds=self._pool.lease_seconds,
        )
        # An interrupted run's call may have been made: its reservations count as spent.
        await budget_ledger.settle_in_full(conn, writes.cancelled)
        if leased:
            taken = await self._pool.take_inline(conn, leased)
            context.after_commit(lambda: self._pool.after_inline(taken))

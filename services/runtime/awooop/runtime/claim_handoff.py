"""The runtime's processor outside a runtime process (`awooop dlq replay`).

Inside a runtime process a handler leases each due run to that process and,
once the batch committed, submits it to the local step pool. Outside one there
is no pool to submit to, and none is needed: every runtime process's claim loop
polls the `runs` table for due runs nobody holds. So here a due run is leased
to `REPLAY_OWNER` by the same statements as always and, in the same
transaction, released again: no owner, no lease, attempt 0, `wake_at` due.
The next claim by any running runtime takes it as a first attempt, exactly as
a timer's step; an expired lease would be claimed too, but as a retry that
spends one of the run's `max_attempts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord
from awooop.infra.processor import BatchContext
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import Clock
from awooop.runtime.steps import Inline

REPLAY_OWNER = "awooop-dlq-replay"
"""Holds a lease only inside the transaction that took it."""


class ClaimLoopHandoff:
    """A `StepHandoff` that leaves leased steps to the claim loops of running processes."""

    owner = REPLAY_OWNER
    lease_seconds = 0.0

    async def take_inline(self, conn: asyncpg.Connection, leases: list[Lease]) -> Inline:
        """No step is taken here: each lease is released before the commit."""
        return Inline(0, leases, [], [])

    def after_inline(self, taken: Inline) -> None:
        """Nothing to run here: the leases were released before the commit."""


async def release_to_claim_loop(conn: asyncpg.Connection) -> int:
    """Release every lease `REPLAY_OWNER` took in this transaction; return how many."""
    status: str = await conn.execute(
        "UPDATE runs SET lease_owner = NULL, lease_until = NULL, attempt = 0 "
        "WHERE lease_owner = $1",
        REPLAY_OWNER,
    )
    return int(status.split()[-1])


class ReplayRuntimeProcessor(RuntimeProcessor):
    """The runtime's processor with its leased steps left to the claim loops."""

    def __init__(self, *, contracts: ContractSource, clock: Clock, service: str) -> None:
        super().__init__(ClaimLoopHandoff(), contracts=contracts, clock=clock, service=service)

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        await super().apply(context, records)
        await release_to_claim_loop(context.conn)

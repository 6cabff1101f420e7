"""The runtime's Kafka processor: each batch folded into its runs in one transaction.

Per batch, behind the inbox: one statement locks every run row the batch
touches (in id order), the batch is decided in memory in partition-offset
order, then one statement inserts the new runs, one updates the changed
ones and one appends every event. It never calls an agent: when a step is
due it leases the run to this process and, once the batch committed, hands
it to the local step pool.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from awooop.contracts.catalogue import builtin_catalogue
from awooop.contracts.codec import EnvelopeCodec
from awooop.contracts.envelope import Envelope
from awooop.contracts.headers import HEADER_EVENT_TYPE
from awooop.infra.handler_table import decode_envelope
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.postgres import event_store, inbox
from awooop.runtime.adapters import run_batch
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.batch import MESSAGE, OUTCOMES, fold_batch, lock_keys
from awooop.runtime.scheduler import StepPool

HANDLED = frozenset({MESSAGE, *OUTCOMES})


class RuntimeProcessor:
    """A BatchProcessor over ingress messages and gateway outcomes, idempotent on `event_id`."""

    def __init__(self, pool: StepPool, name: str = "runtime") -> None:
        self.name = name
        self._pool = pool
        self._codec = EnvelopeCodec()
        self._catalogue, self._revision = builtin_catalogue()
        self._leased: list[Lease] = []

    def handles(self, record: RawRecord) -> bool:
        return record.header(HEADER_EVENT_TYPE) in HANDLED

    def decode(self, record: RawRecord) -> DecodedRecord:
        return decode_envelope(self._codec, record)

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        self._leased = []  # whatever an earlier, rolled-back attempt queued
        envelopes = first_seen(await inbox.claim(conn, self.name, _ids(records)), records)
        if not envelopes:
            return
        run_ids, subjects = lock_keys(envelopes)
        locked = await run_batch.lock_runs(conn, run_ids, subjects)
        now = dt.datetime.now(dt.UTC)
        writes = fold_batch(locked, envelopes, self._catalogue, self._revision, now)
        owner, seconds = self._pool.owner, self._pool.lease_seconds
        leased = await run_batch.insert_runs(
            conn, list(writes.inserts.values()), owner=owner, lease_seconds=seconds
        )
        leased += await run_batch.update_runs(
            conn, list(writes.updates.values()), owner=owner, lease_seconds=seconds
        )
        await event_store.append(conn, writes.events)
        self._leased = leased

    def committed(self) -> None:
        leased, self._leased = self._leased, []
        for lease in leased:
            self._pool.submit(lease)


def _ids(records: Sequence[DecodedRecord]) -> list[UUID]:
    return [r.body.event_id for r in records]


def first_seen(new: set[UUID], records: Sequence[DecodedRecord]) -> list[Envelope[Any]]:
    """The records not seen before, in order; a duplicate inside one batch applies once."""
    envelopes: list[Envelope[Any]] = []
    for item in records:
        if item.body.event_id in new:
            new.discard(item.body.event_id)
            envelopes.append(item.body)
    return envelopes

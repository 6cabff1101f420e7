"""The contract reader: every reading service's live copy of the contracts (ARCHITECTURE §4).

It reads ``awooop.contract.events.v1`` without a consumer group (every partition
assigned, nothing committed), from the beginning at each start: the topic is small and
the fold is idempotent. Each batch is folded, :attr:`ContractReader.view` shows it, and
the revisions it changed are written to the service's own ``contract_revisions`` table
in one statement. :meth:`catch_up` returns once every partition
reached the high watermark the fetches reported, which is what the service runner waits
for before it starts its ``BatchConsumer``: no inbound record is decided before the
contracts that were active when the service started are known. :meth:`follow` then
applies new revisions while the service runs.

A record that does not decode as a contract event is logged and skipped: this reader
has no consumer group and so no DLQ of its own, and the approval service, the topic's
only producer, validated it. A database outage while writing the table is retried, never
taken for a bad record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Protocol

import asyncpg

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import EnvelopeDecodeError
from awooop.contracts.records.headers import read_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.active import (
    ContractFold,
    ContractView,
    RevisionRecord,
    parse_signed,
)
from awooop.infra.kafka.log_reader import LogReader, Record, partitions_of
from awooop.infra.logging import get_logger
from awooop.infra.settings import KafkaSettings
from awooop.security.signing_keys import KeyRing

log = get_logger(__name__)

CONTRACT_TOPIC = Topics.CONTRACT_EVENTS.name

_UPSERT = """
INSERT INTO contract_revisions AS r
    (project_id, contract_id, revision, family, body, state, body_sha256, signature, refusal,
     activated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::jsonb[], $6::text[],
                     $7::text[], $8::jsonb[], $9::text[], $10::timestamptz[])
ON CONFLICT (project_id, contract_id, revision) DO UPDATE
SET state = EXCLUDED.state, body_sha256 = EXCLUDED.body_sha256,
    signature = EXCLUDED.signature, refusal = EXCLUDED.refusal,
    activated_at = EXCLUDED.activated_at, folded_at = now()
"""

_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)

FOLLOW_WAIT_MS = 1000
"""How long a fetch of the running reader waits for a new contract event: a change
applies within about this, and an idle reader costs the broker one fetch a second."""


class ContractSource:
    """Where a processor finds the contracts now: a view that may change between batches."""

    def __init__(self, view: ContractView | None = None) -> None:
        self._view = view or ContractView()

    @property
    def view(self) -> ContractView:
        return self._view

    def _show(self, view: ContractView) -> None:
        self._view = view


class HasContracts(Protocol):
    contracts: ContractReader | None


def contracts_of(runner: HasContracts | None) -> ContractSource:
    """A processor's contracts: the running service's reader, or, outside a running
    service (`runner` None), the ones its table holds, loaded by `StoredContracts.load`."""
    if runner is None:
        return StoredContracts()
    if runner.contracts is None:
        raise RuntimeError("the service spec must set reads_contracts to use contracts")
    return runner.contracts


async def load_stored_contracts(processor: object, conn: asyncpg.Connection) -> None:
    """Load the table's contracts into `processor.contracts` when it is a `StoredContracts`
    (a processor built outside a running service); nothing otherwise."""
    source = getattr(processor, "contracts", None)
    if isinstance(source, StoredContracts):
        await source.load(conn)


class StoredContracts(ContractSource):
    """The contracts a service last folded, read from its table: for work done outside a
    running service (`awooop dlq replay`), which has no reader of its own."""

    async def load(self, conn: asyncpg.Connection) -> None:
        """Read the service's ``contract_revisions`` (its schema on the search path)."""
        rows = await conn.fetch(
            "SELECT project_id, contract_id, revision, family, body, state, body_sha256, "
            "signature, refusal, activated_at FROM contract_revisions"
        )
        records = [
            RevisionRecord(
                row["project_id"],
                row["contract_id"],
                row["revision"],
                row["family"],
                json.loads(row["body"]),
                row["state"],
                row["body_sha256"],
                json.loads(row["signature"]) if row["signature"] is not None else None,
                row["refusal"],
                row["activated_at"],
            )
            for row in rows
        ]
        # The refusals were decided when folded; nothing is verified again here.
        signed, skipped = parse_signed(records)
        self._show(ContractView(signed, skipped))


class ContractReader(ContractSource):
    """A group-less reader of the contract topic that folds into `pool`'s table."""

    def __init__(
        self,
        kafka: KafkaSettings,
        ring: KeyRing,
        pool: asyncpg.Pool | None,
        *,
        client_id: str = "awooop-contract-reader",
    ) -> None:
        super().__init__()
        self._kafka = kafka
        self._fold = ContractFold(ring)
        self._pool = pool
        self._codec = EnvelopeCodec()
        self._client_id = client_id
        self._reader = LogReader(kafka, partitions_of([CONTRACT_TOPIC]), client_id=client_id)
        self._open = False
        self.folded = 0
        """Contract events folded since the start (repeats included)."""

    async def catch_up(self, within: float | None = None) -> ContractView:
        """Open the reader and fold up to the high watermarks the first fetches report."""
        await self._reader.__aenter__()
        self._open = True
        async for batch in self._reader.batches(within=within):
            await self._apply(batch)
        view = self.view
        log.info(
            "contracts_loaded",
            active=len(view.revisions),
            skipped=list(view.skipped),
            conflicts=view.conflicts,
        )
        return view

    async def follow(self) -> None:
        """Fold new contract events as they arrive; runs until cancelled.

        The catch-up's reader answers fast (the service waits on it); this one parks
        each fetch for `FOLLOW_WAIT_MS`, so an idle reader does not keep the broker busy.
        """
        assert self._open, "catch_up() first"
        caught_up = self._reader
        self._reader = LogReader(
            self._kafka,
            caught_up.partitions,
            starts=caught_up.positions,
            client_id=self._client_id,
            fetch_max_wait_ms=FOLLOW_WAIT_MS,
        )
        await caught_up.__aexit__(None, None, None)
        await self._reader.__aenter__()
        async for batch in self._reader.follow():
            changed = await self._apply(batch)
            if changed:
                view = self.view
                log.info(
                    "contracts_changed",
                    revisions=[
                        f"{r.project_id}/{r.contract_id}@{r.revision}:{r.state}" for r in changed
                    ],
                    active=len(view.revisions),
                    skipped=list(view.skipped),
                    conflicts=view.conflicts,
                )

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self._reader.__aexit__(None, None, None)

    async def _apply(self, batch: Sequence[Record]) -> list[RevisionRecord]:
        """Fold `batch`, show the new view, store what changed; the changed revisions."""
        changed: dict[tuple[str, str, int], RevisionRecord] = {}
        for record in batch:
            headers = read_headers(record.headers)
            try:
                envelope = self._codec.decode(
                    record.value, headers.schema_version, headers.event_type
                )
            except EnvelopeDecodeError as error:
                log.error(
                    "contract_record_skipped",
                    code=error.code,
                    reason=error.reason,
                    partition=record.partition,
                    offset=record.offset,
                )
                continue
            self.folded += 1
            for revision in self._fold.apply(envelope):
                changed[revision.key] = revision
        if not changed:
            return []
        # Shown first, stored second: a row in the table means this process decides by it
        # already (what `awooop contracts onboard` waits for); a row lost to a crash here
        # is folded again at the next start, which reads the topic from the beginning.
        self._show(self._fold.view())
        await self._store(list(changed.values()))
        return list(changed.values())

    async def _store(self, records: list[RevisionRecord]) -> None:
        if self._pool is None:
            return
        columns = (
            [r.project_id for r in records],
            [r.contract_id for r in records],
            [r.revision for r in records],
            [r.family for r in records],
            [json.dumps(r.body) for r in records],
            [r.state for r in records],
            [r.body_sha256 for r in records],
            [json.dumps(r.signature) if r.signature is not None else None for r in records],
            [r.refusal for r in records],
            [r.activated_at for r in records],
        )
        delay = 0.2
        while True:
            try:
                await self._pool.execute(_UPSERT, *columns)
                return
            except _TRANSIENT as error:
                log.warning("contract_table_unavailable", error=repr(error), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

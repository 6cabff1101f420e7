"""The projector's BatchProcessor: decode, fold the batch per key, merge in bulk.

No inbox: the Postgres offset store drops records below the stored offsets
inside the batch transaction, and every merge is idempotent per event (a
redelivery at a new offset changes nothing), so each event applies once.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awooop.contracts.codec import EnvelopeCodec
from awooop.contracts.errors import E_DLQ_INVALID
from awooop.contracts.headers import HEADER_EVENT_TYPE
from awooop.infra.handler_table import decode_envelope
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres.tenant import set_tenants
from awooop.projector.adapters.read_model_writer import write_read_models
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    NotARunId,
    fold_batch,
    run_id_of,
)


class ReadModelProjector:
    """Projects ingress, run and gateway events into `runs` and `timeline`."""

    name = "projector.read_models"

    def __init__(self, codec: EnvelopeCodec | None = None) -> None:
        self._codec = codec or EnvelopeCodec()

    def handles(self, record: RawRecord) -> bool:
        return record.header(HEADER_EVENT_TYPE) in PROJECTED_EVENT_TYPES

    def decode(self, record: RawRecord) -> DecodedRecord:
        decoded = decode_envelope(self._codec, record)
        try:
            run_id_of(decoded.body)
        except NotARunId as error:
            raise PoisonRecord(E_DLQ_INVALID.code, str(error)) from error
        return decoded

    async def process(self, conn: asyncpg.Connection, records: Sequence[DecodedRecord]) -> None:
        envelopes = [record.body for record in records]
        await set_tenants(conn, {envelope.project_id for envelope in envelopes})
        await write_read_models(conn, fold_batch(envelopes))

    def committed(self) -> None:
        return None

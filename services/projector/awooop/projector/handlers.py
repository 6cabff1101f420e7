"""The projector's BatchProcessor: decode, fold the batch per key, merge in bulk.

Which event types it projects, and how each one folds, is the pair of tables
in its domain: `summaries.SUMMARIES` (every projected type, its timeline line)
and `read_models.RUN_FACTS` (the types that move a run row). No inbox: the
Postgres offset store drops records below the stored offsets inside the batch
transaction, and every merge is idempotent per event (a redelivery at a new
offset changes nothing), so each event applies once.
"""

from __future__ import annotations

from collections.abc import Sequence

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.registries.errors import E_DLQ_INVALID
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres.tenant import set_tenants
from awooop.infra.processor import BatchContext, EventProcessor, envelopes_of
from awooop.projector.adapters.read_model_writer import write_read_models
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    NotARunId,
    fold_batch,
    run_id_of,
)

READ_MODELS = "projector.read_models"


class ReadModelProjector(EventProcessor):
    """Projects ingress, run and gateway events into `runs` and `timeline`."""

    def __init__(self, codec: EnvelopeCodec | None = None, name: str = READ_MODELS) -> None:
        super().__init__(name, PROJECTED_EVENT_TYPES, use_inbox=False, codec=codec)

    def decode(self, record: RawRecord) -> DecodedRecord:
        decoded = super().decode(record)
        try:
            run_id_of(decoded.body)
        except NotARunId as error:
            raise PoisonRecord(E_DLQ_INVALID.code, str(error)) from error
        return decoded

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        envelopes = envelopes_of(records)
        await set_tenants(context.conn, {envelope.project_id for envelope in envelopes})
        await write_read_models(context.conn, fold_batch(envelopes))

"""The projector's BatchProcessor: decode, fold the batch per key, merge in bulk.

Which event types it projects, and how each one folds, is the pair of tables
in its domain: `summaries.SUMMARIES` (every projected run-side type, its
timeline line) and `run_facts.RUN_FACTS` (the types that move a run row);
step reports, and outbound messages with their delivery reports, give their own rows
(`steps`, `outbound`); every ingress event, with the runtime's word on a message, gives
its `channel_events` row (`channel_events`, `channel_facts`); a tool call's request and
the gateway's word on it give its `mcp_calls` row (`mcp_calls`); an approval request's
events give its `approvals` row (`approvals`);
budget events fold into the budget read models (`budget_models`), and contract
events into the contract read models (`contract_models`), their publication
signatures checked with the key ring the processor is given. No
inbox: the Postgres offset store drops records below the stored offsets inside
the batch transaction, and every merge is idempotent per event (a redelivery at
a new offset changes nothing), so each event applies once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.registries.errors import E_DLQ_INVALID
from awooop.infra.kafka.records import DecodedRecord, PoisonRecord, RawRecord
from awooop.infra.postgres.tenant import set_tenants
from awooop.infra.processor import BatchContext, EventProcessor, envelopes_of
from awooop.projector.adapters.contract_writer import stored_bodies
from awooop.projector.adapters.read_model_writer import write_read_models
from awooop.projector.domain.contract_models import RevisionKey, revisions_needing_bodies
from awooop.projector.domain.read_models import (
    PROJECTED_EVENT_TYPES,
    NotARunId,
    fold_batch,
    require_fold_key,
)
from awooop.security.signing_keys import KeyRing

READ_MODELS = "projector.read_models"


class ReadModelProjector(EventProcessor):
    """Projects ingress, run, gateway, approval, outbound and delivery events into `runs`,
    `timeline`, `run_steps`, `outbound_messages`, `channel_events`, `mcp_calls` and
    `approvals`, budget
    events into `budget_state` and `budget_trips`, and contract events into `contracts`
    and `contract_revisions`.

    `ring` verifies contract publications; without one (a test that projects no
    contract) their `signature_check` stays null. The service always has one (app.py).
    """

    def __init__(
        self,
        codec: EnvelopeCodec | None = None,
        name: str = READ_MODELS,
        ring: KeyRing | None = None,
    ) -> None:
        super().__init__(name, PROJECTED_EVENT_TYPES, use_inbox=False, codec=codec)
        self.ring = ring

    def decode(self, record: RawRecord) -> DecodedRecord:
        decoded = super().decode(record)
        try:
            require_fold_key(decoded.body)
        except NotARunId as error:
            raise PoisonRecord(E_DLQ_INVALID.code, str(error)) from error
        return decoded

    async def apply(self, context: BatchContext, records: Sequence[DecodedRecord]) -> None:
        envelopes = envelopes_of(records)
        await set_tenants(context.conn, {envelope.project_id for envelope in envelopes})
        bodies: dict[RevisionKey, dict[str, Any]] = {}
        if self.ring is not None:
            bodies = await stored_bodies(context.conn, revisions_needing_bodies(envelopes))
        await write_read_models(context.conn, fold_batch(envelopes, self.ring, bodies))

"""Decisions on approval requests as stored events, and the tokens of grants.

Every event of a request is of its `approval` stream (`stream_id` = the approval id),
numbered after the request's last one, keyed by its run on `awooop.approval.events.v1`,
and carries the trace of the held call it answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from awooop.approval.adapters.approval_store import StoredRequest
from awooop.approval.domain.requests import ApprovalRequest, Decision, MintedToken
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.service_names import APPROVAL
from awooop.contracts.registries.topics import Topics
from awooop.infra.events import to_new_event
from awooop.infra.postgres.event_store import NewEvent
from awooop.security.approval_tokens import (
    ApprovalGrant,
    approval_token_id,
    mint_approval_token,
)
from awooop.security.signing_keys import SigningKey

STREAM_TYPE = "approval"
SERVICE_ACTOR = f"service:{APPROVAL}"


def recorded(
    stored: StoredRequest,
    decision: Decision,
    *,
    at: dt.datetime,
    causation_id: str | None,
    actor: str = SERVICE_ACTOR,
) -> tuple[StoredRequest, list[NewEvent]]:
    """The request after `decision`, and its events numbered after the stored ones."""
    request = decision.request
    events = [
        _event(request, payload, stored.seq + n, stored.trace_id, at, causation_id, actor)
        for n, payload in enumerate(decision.payloads, start=1)
    ]
    return StoredRequest(request, stored.seq + len(events), stored.trace_id), events


def _event(
    request: ApprovalRequest,
    payload: Any,
    seq: int,
    trace_id: str,
    at: dt.datetime,
    causation_id: str | None,
    actor: str,
) -> NewEvent:
    envelope = new_envelope(
        payload,
        occurred_at=at,
        project_id=request.project_id,
        stream_type=STREAM_TYPE,
        stream_id=str(request.approval_id),
        stream_seq=seq,
        trace_id=trace_id,
        correlation_id=request.run_id,
        causation_id=causation_id,
        actor=actor,
        producer=APPROVAL,
    )
    return to_new_event(envelope, Topics.APPROVAL_EVENTS, request.run_id)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyMinter:
    """Mints the token of a grant decided at `at`, valid for `ttl` from then or from now,
    whichever is later: a press consumed late (a lagging consumer) still gets its full
    lifetime. The jti is derived from the approval, so whatever mints it names one token
    id; a batch that rolled back published nothing it minted."""

    key: SigningKey
    ttl: dt.timedelta

    def __call__(self, request: ApprovalRequest, at: dt.datetime) -> MintedToken:
        issued = max(at, dt.datetime.now(dt.UTC)).replace(microsecond=0)
        grant = ApprovalGrant(
            approval_id=request.approval_id,
            project_id=request.project_id,
            run_id=request.run_id,
            call_id=request.call_id,
            action_hash=request.action_hash,
            issued_at=issued,
            expires_at=issued + self.ttl,
        )
        token = mint_approval_token(self.key, grant)
        token_id = approval_token_id(request.approval_id)
        return MintedToken(token, token_id, self.key.kid, grant.expires_at)

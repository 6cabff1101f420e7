"""Envelopes of one contract's stream, as the approval service writes them, for the
projector's tests: `ContractStream` numbers the stream and signs publications."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from awooop.contracts.events.payloads.contract import (
    ContractActivated,
    ContractDraftCreated,
    ContractPublished,
    ContractRetired,
    ContractSigned,
    PublicationSignature,
)
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.security.contract_signing import sign
from awooop.security.signing_keys import KeyRing, SigningKey, generate_ed25519_keys

BASE = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
KEYS = generate_ed25519_keys("projector-test")
SIGNING_KEY = SigningKey.from_spec(KEYS.signing_spec)
RING_SPEC = KEYS.verifying_spec
RING = KeyRing.from_spec(RING_SPEC)
OTHER_KEY = SigningKey.from_spec(generate_ed25519_keys("not-in-the-ring").signing_spec)


def policy_body(approvers: tuple[str, ...] = ("alice", "bob"), note: str = "") -> dict[str, Any]:
    """A policy document; only its shape matters to the projector."""
    body: dict[str, Any] = {"family": "policy", "mode": "suggest", "approvers": list(approvers)}
    if note:
        body["note"] = note
    return body


@dataclass
class ContractStream:
    """The events of one contract, numbered as its stream (`stream_seq` from 1)."""

    project: str
    contract: str
    family: str = "policy"
    at: dt.datetime = BASE
    events: list[Envelope[Any]] = field(default_factory=list)
    bodies: dict[int, dict[str, Any]] = field(default_factory=dict)

    def _add(self, payload: Any, actor: str = "operator:carol") -> Envelope[Any]:
        stream_id = f"{self.project}:{self.contract}"
        envelope = new_envelope(
            payload,
            occurred_at=self.at + dt.timedelta(minutes=len(self.events)),
            project_id=self.project,
            stream_type="contract",
            stream_id=stream_id,
            stream_seq=len(self.events) + 1,
            trace_id=new_trace_id(),
            correlation_id=stream_id,
            actor=actor,
            producer="approval",
        )
        self.events.append(envelope)
        return envelope

    def draft(self, body: dict[str, Any], author: str = "carol") -> Envelope[Any]:
        revision = len(self.bodies) + 1
        self.bodies[revision] = body
        return self._add(
            ContractDraftCreated(
                contract_id=self.contract,
                family=self.family,  # type: ignore[arg-type]
                revision=revision,
                body=body,
                author=author,
            )
        )

    def publish(
        self,
        revision: int,
        key: SigningKey = SIGNING_KEY,
        signed_body: dict[str, Any] | None = None,
    ) -> Envelope[Any]:
        """Publish `revision`, signed over `signed_body` (default: its own body) by `key`."""
        s = sign(signed_body if signed_body is not None else self.bodies[revision], key)
        signature = PublicationSignature(
            kid=s.kid,
            alg=s.alg,  # type: ignore[arg-type]
            body_sha256=s.body_sha256,
            signature=s.signature,
        )
        return self._add(
            ContractPublished(
                contract_id=self.contract,
                revision=revision,
                body_sha256=s.body_sha256,
                signature=signature,
            )
        )

    def sign(self, revision: int, signer: str) -> Envelope[Any]:
        return self._add(
            ContractSigned(contract_id=self.contract, revision=revision, signer=signer),
            actor=f"operator:{signer}",
        )

    def activate(
        self, revision: int, signers: tuple[str, ...], superseded: int | None = None
    ) -> Envelope[Any]:
        return self._add(
            ContractActivated(
                contract_id=self.contract,
                revision=revision,
                signers=signers,
                superseded_revision=superseded,
            )
        )

    def retire(self, revision: int) -> Envelope[Any]:
        return self._add(ContractRetired(contract_id=self.contract, revision=revision))


def two_revisions(project: str, contract: str = "payments") -> ContractStream:
    """Revision 1 activated, then revision 2 activated over it (1 retired by that),
    and a third drafted and abandoned: eleven events."""
    stream = ContractStream(project, contract)
    stream.draft(policy_body())
    stream.publish(1)
    stream.sign(1, "alice")
    stream.sign(1, "bob")
    stream.activate(1, ("alice", "bob"))
    stream.draft(policy_body(("alice", "bob", "dave"), note="dave joins"))
    stream.publish(2)
    stream.sign(2, "bob")
    stream.activate(2, ("bob",), superseded=1)
    stream.draft(policy_body(note="never finished"))
    stream.retire(3)
    return stream

"""The contract commands as the HTTP edge receives them, and the one decision each makes.

A command names its contract and, except a draft, a revision; :func:`decide` folds
nothing itself: it takes the contract as folded and returns the payload to append
and the answer to give, or raises a ``ContractRefused``. :func:`fingerprint` is what a
request id is bound to, so the same id cannot be reused for another command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from awooop.approval.domain.activation import activate, required_signatures
from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.lifecycle import create_draft, publish, retire, sign
from awooop.contracts.records.envelope import EventPayload
from awooop.security.canonical_json import canonical_json
from awooop.security.signing_keys import SigningKey

CommandName = Literal["draft", "publish", "sign", "activate", "retire"]


@dataclass(frozen=True)
class ContractCommand:
    """One command on one contract, by ``subject`` (the author of a draft, the signer)."""

    name: CommandName
    project_id: str
    contract_id: str
    subject: str
    request_id: str
    revision: int | None = None
    family: str | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def stream_id(self) -> str:
        """The contract's stream (and key on the contract topic): ``project:contract``."""
        return f"{self.project_id}:{self.contract_id}"


@dataclass(frozen=True)
class Decision:
    """The payload to append and the answer (HTTP status and JSON body) to give."""

    payload: EventPayload
    status: int
    answer: dict[str, Any]


def fingerprint(command: ContractCommand) -> str:
    """SHA-256 of what the command asks, the request id and the subject left out."""
    asked = {
        "name": command.name,
        "contract_id": command.contract_id,
        "revision": command.revision,
        "family": command.family,
        "body": command.body,
    }
    return hashlib.sha256(canonical_json(asked)).hexdigest()


def decide(
    state: Contract,
    command: ContractCommand,
    signing_key: SigningKey,
    signatures: Mapping[str, int] | None = None,
) -> Decision:
    """The one event ``command`` appends to ``state``; refusals raise ``ContractRefused``.

    ``signatures`` overrides the signers a family needs (settings; decision 0025).
    """
    if command.name == "draft":
        assert command.family is not None
        drafted = create_draft(state, command.family, command.body, command.subject)
        return Decision(drafted, 201, _answer(command, drafted.revision, "draft"))
    assert command.revision is not None
    revision = command.revision
    payload: EventPayload
    extra: dict[str, Any]
    if command.name == "publish":
        published = publish(state, revision, signing_key)
        extra = {"body_sha256": published.body_sha256, "kid": published.signature.kid}
        return Decision(published, 200, _answer(command, revision, "published", **extra))
    if command.name == "sign":
        payload = sign(state, revision, command.subject)
        current = state.revision(revision)
        needed = required_signatures(state.family or "", signatures)
        signers = [*current.counted_signers, command.subject]
        extra = {"signers": signers, "required_signatures": needed}
        return Decision(payload, 200, _answer(command, revision, "published", **extra))
    if command.name == "activate":
        needed = required_signatures(state.family or "", signatures)
        activated = activate(state, revision, needed)
        extra = {
            "signers": list(activated.signers),
            "superseded_revision": activated.superseded_revision,
        }
        return Decision(activated, 200, _answer(command, revision, "active", **extra))
    payload = retire(state, revision)
    return Decision(payload, 200, _answer(command, revision, "retired"))


def _answer(command: ContractCommand, revision: int, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "project_id": command.project_id,
        "contract_id": command.contract_id,
        "revision": revision,
        "state": state,
        **extra,
    }

"""Payloads produced by the approval service on ``awooop.contract.events.v1``.

One stream per contract, keyed ``project_id:contract_id``. A contract is a sequence of
revisions numbered from 1; each revision is drafted once (its body never changes
afterwards), published (its canonical body signed by the service), signed by people,
activated (at most one revision of a contract is active), and retired.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from awooop.contracts.events.registry import register_payload
from awooop.contracts.records.envelope import EventPayload

CONTRACT_ID_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
"""A contract's id within its project."""

SUBJECT_PATTERN = r"^\S([^\r\n]*\S)?$"
"""A platform or API subject: no line break, no leading or trailing space, so one person
cannot count twice as ``alice`` and ``alice ``."""

KID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
"""A signing key's id; the same pattern as ``awooop.security.signing_keys.KID_PATTERN``."""

SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"

ContractFamilyName = Literal[
    "agent", "tool", "policy", "channel_binding", "budget", "runtime_run_state"
]
"""The six contract families (``awooop.contracts.families.registry.CONTRACT_FAMILIES``)."""

ContractId = Annotated[str, Field(pattern=CONTRACT_ID_PATTERN)]
ContractRevisionNumber = Annotated[int, Field(strict=True, ge=1)]
"""A revision of one contract; each contract counts its revisions from 1."""
Subject = Annotated[str, Field(min_length=1, max_length=256, pattern=SUBJECT_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=SHA256_HEX_PATTERN)]


def revision_ref(contract_id: str, revision: int, body_sha256: str) -> str:
    """The revision a decision records: ``<contract_id>@<revision>:<first 12 hex of the digest>``.

    The digest prefix lets a reader notice a log where the same revision number holds
    another body. Raises ``ValueError`` for a revision below 1 or a digest that is not
    64 lowercase hex digits.
    """
    if revision < 1 or re.fullmatch(SHA256_HEX_PATTERN, body_sha256) is None:
        msg = f"revision must be >= 1 and body_sha256 64 lowercase hex, got {revision}"
        raise ValueError(msg)
    return f"{contract_id}@{revision}:{body_sha256[:12]}"


def _distinct(subjects: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(subjects)) != len(subjects):
        msg = "signers must be distinct"
        raise ValueError(msg)
    return subjects


class PublicationSignature(BaseModel):
    """The publishing service's signature over the canonical body (RFC 8785 JSON).

    The fields of ``awooop.security.contract_signing.ContractSignature``: the key id,
    its pinned algorithm, the SHA-256 of the canonical body and the base64url signature.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kid: Annotated[str, Field(pattern=KID_PATTERN)]
    alg: Literal["EdDSA", "HS256"]
    body_sha256: Sha256Hex
    signature: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


@register_payload("contract.draft_created", 1)
class ContractDraftCreated(EventPayload):
    """A new revision of a contract was drafted: its family, body and author.

    ``revision`` is the next number of the contract (the first is 1). The body is the
    family document as written; it is checked against its family when published, not
    here, so a draft may be incomplete. Every revision of a contract has one family.
    """

    contract_id: ContractId
    family: ContractFamilyName
    revision: ContractRevisionNumber
    body: dict[str, Any]
    author: Subject


@register_payload("contract.published", 1)
class ContractPublished(EventPayload):
    """A draft passed its family's checks and the service signed its canonical body.

    ``body_sha256`` is the SHA-256 of the canonical body, equal to the signature's.
    """

    contract_id: ContractId
    revision: ContractRevisionNumber
    body_sha256: Sha256Hex
    signature: PublicationSignature

    @model_validator(mode="after")
    def _digest_is_the_signed_one(self) -> Self:
        if self.signature.body_sha256 != self.body_sha256:
            msg = "body_sha256 differs from the signature's body_sha256"
            raise ValueError(msg)
        return self


@register_payload("contract.signed", 1)
class ContractSigned(EventPayload):
    """A person signed a published revision (never its author, never twice)."""

    contract_id: ContractId
    revision: ContractRevisionNumber
    signer: Subject


@register_payload("contract.activated", 1)
class ContractActivated(EventPayload):
    """A published revision with enough signatures became the contract's active one.

    ``signers`` are the distinct signers that counted; ``superseded_revision`` is the
    revision that was active before and is retired by this event (null when none was).
    """

    contract_id: ContractId
    revision: ContractRevisionNumber
    signers: Annotated[tuple[Subject, ...], Field(min_length=1), AfterValidator(_distinct)]
    superseded_revision: ContractRevisionNumber | None

    @model_validator(mode="after")
    def _supersedes_another(self) -> Self:
        if self.superseded_revision == self.revision:
            msg = "a revision cannot supersede itself"
            raise ValueError(msg)
        return self


@register_payload("contract.retired", 1)
class ContractRetired(EventPayload):
    """A revision was withdrawn for good: it is no longer, and never again, active."""

    contract_id: ContractId
    revision: ContractRevisionNumber

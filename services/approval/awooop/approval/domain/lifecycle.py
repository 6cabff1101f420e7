"""The contract commands: each takes the contract as folded and returns the one event to
append, or raises a :class:`~awooop.approval.domain.refusals.ContractRefused`.

Who may send a command (the ``contract_admin`` role) is checked at the HTTP edge before a
command reaches these functions; here a subject is only a name, compared with the
revision's author and earlier signers.
"""

from __future__ import annotations

from typing import Any

from awooop.approval.domain.body_checks import check_draftable, check_publishable
from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.refusals import (
    AuthorCannotSign,
    ContractFamilyRefused,
    ContractStateForbids,
    SignerRepeated,
)
from awooop.contracts.events.payloads.contract import (
    ContractDraftCreated,
    ContractPublished,
    ContractRetired,
    ContractSigned,
    PublicationSignature,
)
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.security.contract_signing import sign as sign_body
from awooop.security.signing_keys import SigningKey


def create_draft(
    state: Contract, family: str, body: dict[str, Any], author: str
) -> ContractDraftCreated:
    """Draft the contract's next revision.

    The body is not checked against its family here (a draft may be incomplete; publish
    checks it), only that it is JSON with a canonical form. Refuses an unknown family and,
    for an existing contract, another family than its own (E-CONTRACT-FAMILY).
    """
    if family not in CONTRACT_FAMILIES:
        msg = f"unknown family {family!r}: one of {', '.join(CONTRACT_FAMILIES)}"
        raise ContractFamilyRefused(msg)
    if state.family is not None and family != state.family:
        msg = f"contract {state.contract_id!r} is a {state.family} contract, not {family}"
        raise ContractFamilyRefused(msg)
    check_draftable(body)
    return ContractDraftCreated(
        contract_id=state.contract_id,
        family=family,
        revision=state.next_revision,
        body=body,
        author=author,
    )


def publish(state: Contract, revision: int, signing_key: SigningKey) -> ContractPublished:
    """Check a draft's body against its family and sign its canonical JSON with ``signing_key``.

    Refuses anything but a draft (E-CONTRACT-STATE) and a body its family refuses
    (E-CONTRACT-BODY-INVALID, every problem listed by JSON pointer).
    """
    draft = state.revision(revision)
    draft.require("draft", "published")
    assert state.family is not None  # a contract with a revision has a family
    check_publishable(state.family, draft.body)
    signed = sign_body(draft.body, signing_key)
    return ContractPublished(
        contract_id=state.contract_id,
        revision=revision,
        body_sha256=signed.body_sha256,
        signature=PublicationSignature(
            kid=signed.kid,
            alg=signing_key.alg,
            body_sha256=signed.body_sha256,
            signature=signed.signature,
        ),
    )


def sign(state: Contract, revision: int, signer: str) -> ContractSigned:
    """Add ``signer``'s signature to a published revision.

    Refuses any other state (E-CONTRACT-STATE), the revision's author
    (E-CONTRACT-SIGNER-AUTHOR) and a second signature by one signer
    (E-CONTRACT-SIGNER-REPEATED).
    """
    published = state.revision(revision)
    published.require("published", "signed")
    if signer == published.author:
        msg = f"{signer!r} wrote revision {revision}; the author's signature does not count"
        raise AuthorCannotSign(msg)
    if signer in published.signers:
        raise SignerRepeated(f"{signer!r} has already signed revision {revision}")
    return ContractSigned(contract_id=state.contract_id, revision=revision, signer=signer)


def retire(state: Contract, revision: int) -> ContractRetired:
    """Withdraw a revision for good: a draft (abandoned), a published one or the active one.

    Retiring the active revision leaves the contract with none. Refuses a revision
    already retired (E-CONTRACT-STATE).
    """
    current = state.revision(revision)
    if current.state == "retired":
        raise ContractStateForbids(f"revision {revision} is already retired")
    return ContractRetired(contract_id=state.contract_id, revision=revision)

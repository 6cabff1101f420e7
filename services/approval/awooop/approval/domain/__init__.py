"""The contract lifecycle without I/O: the aggregate folded from its events, and the
commands that decide its next event or refuse with a registered code."""

from awooop.approval.domain.activation import (
    DEFAULT_REQUIRED_SIGNATURES,
    activate,
    required_signatures,
)
from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.lifecycle import create_draft, publish, retire, sign
from awooop.approval.domain.refusals import (
    AuthorCannotSign,
    ContractBodyInvalid,
    ContractFamilyRefused,
    ContractRefused,
    ContractStateForbids,
    ContractUnknown,
    SignerRepeated,
)
from awooop.approval.domain.revisions import ContractRevision, RevisionState
from awooop.contracts.events.payloads.contract import revision_ref

__all__ = [
    "DEFAULT_REQUIRED_SIGNATURES",
    "AuthorCannotSign",
    "Contract",
    "ContractBodyInvalid",
    "ContractFamilyRefused",
    "ContractRefused",
    "ContractRevision",
    "ContractStateForbids",
    "ContractUnknown",
    "RevisionState",
    "SignerRepeated",
    "activate",
    "create_draft",
    "publish",
    "required_signatures",
    "retire",
    "revision_ref",
    "sign",
]

"""Why a contract command was refused: one class per registered code.

The HTTP edge answers with ``code`` and ``reason`` without inspecting the class.
"""

from __future__ import annotations

from awooop.contracts.registries.errors import (
    E_CONTRACT_BODY_INVALID,
    E_CONTRACT_CHANNEL_HELD,
    E_CONTRACT_CLAIM_HELD,
    E_CONTRACT_FAMILY,
    E_CONTRACT_SIGNER_AUTHOR,
    E_CONTRACT_SIGNER_REPEATED,
    E_CONTRACT_STATE,
    E_CONTRACT_UNKNOWN,
    CodedError,
    ErrorCode,
)


class ContractRefused(CodedError):
    """Base of every refused contract command."""

    error: ErrorCode = E_CONTRACT_STATE


class ContractBodyInvalid(ContractRefused):
    """The body fails its family: ``problems`` holds one ``<pointer>: <message>`` per error."""

    error = E_CONTRACT_BODY_INVALID

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("; ".join(self.problems))


class ContractStateForbids(ContractRefused):
    """The revision's lifecycle state does not allow the command."""

    error = E_CONTRACT_STATE


class AuthorCannotSign(ContractRefused):
    """The author's own signature never counts for their revision."""

    error = E_CONTRACT_SIGNER_AUTHOR


class SignerRepeated(ContractRefused):
    """The signer already signed this revision."""

    error = E_CONTRACT_SIGNER_REPEATED


class ContractFamilyRefused(ContractRefused):
    """An unknown family, or another family than the contract's."""

    error = E_CONTRACT_FAMILY


class ContractUnknown(ContractRefused):
    """No such contract, or no such revision of it."""

    error = E_CONTRACT_UNKNOWN


class ChannelHeld(ContractRefused):
    """The binding's bot or app belongs to another project (its binding is active)."""

    error = E_CONTRACT_CHANNEL_HELD


class ClaimHeld(ContractRefused):
    """What the revision defines is defined by another active contract of the project."""

    error = E_CONTRACT_CLAIM_HELD

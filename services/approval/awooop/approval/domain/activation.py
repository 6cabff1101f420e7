"""When a published revision may become its contract's active one: enough signers.

Each family needs a number of distinct signers, never the revision's author:
:data:`DEFAULT_REQUIRED_SIGNATURES`, unless settings override it.
"""

from __future__ import annotations

from collections.abc import Mapping

from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.refusals import ContractStateForbids
from awooop.contracts.events.payloads.contract import ContractActivated
from awooop.contracts.families.registry import CONTRACT_FAMILIES

DEFAULT_REQUIRED_SIGNATURES: Mapping[str, int] = {"policy": 2, "budget": 2}
"""Signatures a revision needs to activate, by family; every other family needs 1."""


def required_signatures(family: str, overrides: Mapping[str, int] | None = None) -> int:
    """How many distinct signers, never the author, a revision of ``family`` needs.

    ``overrides`` (from settings) wins over the defaults. Raises ``KeyError`` for an
    unknown family and ``ValueError`` for a count below 1.
    """
    if family not in CONTRACT_FAMILIES:
        msg = f"unknown contract family {family!r}"
        raise KeyError(msg)
    needed = (overrides or {}).get(family, DEFAULT_REQUIRED_SIGNATURES.get(family, 1))
    if isinstance(needed, bool) or not isinstance(needed, int) or needed < 1:
        msg = f"{family}: a revision needs at least 1 signature, got {needed!r}"
        raise ValueError(msg)
    return needed


def activate(state: Contract, revision: int, required_signers: int) -> ContractActivated:
    """Make a published revision with ``required_signers`` counted signers the active one.

    The revision active before is superseded (retired by the same event). Refuses
    (E-CONTRACT-STATE) a revision that is not published, that has too few signers, or that
    is older than the active revision: a rollback is a new draft of the old body.
    """
    if required_signers < 1:
        msg = f"required_signers must be at least 1, got {required_signers}"
        raise ValueError(msg)
    candidate = state.revision(revision)
    candidate.require("published", "activated")
    signers = candidate.counted_signers
    if len(signers) < required_signers:
        msg = (
            f"revision {revision} has {len(signers)} of the {required_signers} "
            f"signatures it needs to activate"
        )
        raise ContractStateForbids(msg)
    before = state.active
    if before is not None and before.number > revision:
        msg = (
            f"revision {revision} is older than the active revision {before.number}; "
            "to roll back, draft its body again"
        )
        raise ContractStateForbids(msg)
    return ContractActivated(
        contract_id=state.contract_id,
        revision=revision,
        signers=signers,
        superseded_revision=before.number if before else None,
    )

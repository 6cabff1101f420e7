"""The rows of the contract read models, as a batch stages them, and their column order.

`contracts` holds one row per contract of a project; `contract_revisions` one row per
revision. Both are keyed by the envelope's `project_id` (the tenant) and the payload's
`contract_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from awooop.contracts.events.payloads.contract import PublicationSignature

RevisionLifecycle = Literal["draft", "published", "active", "retired"]
LIFECYCLE: tuple[RevisionLifecycle, ...] = ("draft", "published", "active", "retired")
"""A revision only moves forward through these states: the furthest one seen is its state."""

SIGNATURE_VALID = "valid"
"""`signature_check` of a publication whose signature verified; else the refusal's code."""

REVISION_WRITE_ONCE = (
    "body",
    "author",
    "body_sha256",
    "signature_kid",
    "signature_alg",
    "signature_check",
    "drafted_at",
    "published_at",
    "activated_at",
)
"""Columns owned by exactly one event each: merged with `coalesce`, never overwritten."""

CONTRACT_REVISION_COLUMNS = (
    "project_id",
    "contract_id",
    "revision",
    "lifecycle",
    *REVISION_WRITE_ONCE,
    "retired_at",
    "signers",
)
CONTRACT_COLUMNS = (
    "project_id",
    "contract_id",
    "family",
    "latest_revision",
    "active_revision",
    "lifecycle",
    "updated_at",
    "last_stream_seq",
)
CONTRACT_DERIVED = ("active_revision", "lifecycle")
"""`contracts` columns computed from the contract's stored revisions, not from one batch."""


def lifecycle_rank(state: str | None) -> int:
    return -1 if state is None else LIFECYCLE.index(state)


@dataclass(slots=True)
class ContractRevisionRow:
    """What a set of events says about one revision; None where it says nothing."""

    project_id: str
    contract_id: str
    revision: int
    lifecycle: RevisionLifecycle | None = None
    body: dict[str, Any] | None = None
    author: str | None = None
    body_sha256: str | None = None
    signature_kid: str | None = None
    signature_alg: str | None = None
    signature_check: str | None = None
    drafted_at: datetime | None = None
    published_at: datetime | None = None
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    signers: list[str] = field(default_factory=list)
    """Everyone who signed it, sorted by code point, each once."""
    publication: PublicationSignature | None = None
    """The publication's signature, kept until the check is computed (not a column)."""

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in CONTRACT_REVISION_COLUMNS)


@dataclass(slots=True)
class ContractRow:
    """What a set of events says about one contract; derived columns from its revisions."""

    project_id: str
    contract_id: str
    family: str | None = None
    latest_revision: int = 0
    active_revision: int | None = None
    lifecycle: RevisionLifecycle | None = None
    updated_at: datetime | None = None
    last_stream_seq: int = 0

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in CONTRACT_COLUMNS)

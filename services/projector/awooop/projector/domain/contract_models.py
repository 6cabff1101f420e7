"""The contract read models a set of contract events folds into, one row per key.

Every rule is commutative and idempotent, so the rows do not depend on how the
events were batched, ordered or redelivered (the SQL merge in adapters applies
the same rules between a staged row and the stored one):

* a revision's `lifecycle` is the furthest state any of its events implies
  (`LIFECYCLE` order: draft, published, active, retired); a signature implies
  published, and an activation that supersedes a revision retires it;
* columns one event owns are written once (the first non-null value wins);
  `retired_at` is the earliest retirement seen, `signers` the sorted union;
* a contract's `family` is written once, `latest_revision` is the highest
  revision named, `updated_at` is the `occurred_at` of its event with the
  highest `stream_seq`;
* `active_revision` and `lifecycle` of a contract are derived from its
  revisions: the active revision, and its state or else the latest revision's.

`signature_check` is the publication signature verified against the body with
the verifying key ring at fold time: `valid`, or the refusal's code
(`E-CONTRACT-SIG-…`). A publication whose draft is in an earlier batch is checked
against the stored body (`stored_bodies`); without a ring it stays null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.projector.domain.contract_rows import (
    REVISION_WRITE_ONCE,
    SIGNATURE_VALID,
    ContractRevisionRow,
    ContractRow,
    lifecycle_rank,
)
from awooop.security.contract_signing import ContractSignature, SignatureRefused, verify
from awooop.security.signing_keys import KeyRing

CONTRACT_EVENT_TYPES = frozenset(
    {
        "contract.draft_created",
        "contract.published",
        "contract.signed",
        "contract.activated",
        "contract.retired",
    }
)

RevisionKey = tuple[str, str, int]
"""`(project_id, contract_id, revision)`."""


def _revision_facts(envelope: Envelope[Any]) -> list[ContractRevisionRow]:
    """The revision rows one event implies on its own."""
    p, at = envelope.payload, envelope.occurred_at
    key = (envelope.project_id, p.contract_id)
    row = ContractRevisionRow(*key, p.revision)
    kind = envelope.event_type
    if kind == "contract.draft_created":
        row.lifecycle, row.body, row.author, row.drafted_at = "draft", p.body, p.author, at
    elif kind == "contract.published":
        row.lifecycle, row.body_sha256, row.published_at = "published", p.body_sha256, at
        row.signature_kid, row.signature_alg = p.signature.kid, p.signature.alg
        row.publication = p.signature
    elif kind == "contract.signed":
        row.lifecycle, row.signers = "published", [p.signer]
    elif kind == "contract.activated":
        row.lifecycle, row.activated_at, row.signers = "active", at, sorted(set(p.signers))
        if p.superseded_revision is not None:
            old = ContractRevisionRow(*key, p.superseded_revision, "retired", retired_at=at)
            return [row, old]
    else:
        row.lifecycle, row.retired_at = "retired", at
    return [row]


def merge_revision(row: ContractRevisionRow, fact: ContractRevisionRow) -> None:
    """Fold `fact` into `row` (same key): the rules above, in memory."""
    if lifecycle_rank(fact.lifecycle) > lifecycle_rank(row.lifecycle):
        row.lifecycle = fact.lifecycle
    for column in REVISION_WRITE_ONCE:
        if getattr(row, column) is None:
            setattr(row, column, getattr(fact, column))
    retirements = [at for at in (row.retired_at, fact.retired_at) if at is not None]
    row.retired_at = min(retirements, default=None)
    if fact.signers:
        row.signers = sorted({*row.signers, *fact.signers})
    row.publication = row.publication or fact.publication


def merge_contract(row: ContractRow, fact: ContractRow) -> None:
    """Fold `fact` into `row` (same key); the derived columns are left to `derive`."""
    row.family = row.family or fact.family
    row.latest_revision = max(row.latest_revision, fact.latest_revision)
    if fact.last_stream_seq > row.last_stream_seq:
        row.updated_at, row.last_stream_seq = fact.updated_at, fact.last_stream_seq


def derive(contract: ContractRow, revisions: Iterable[ContractRevisionRow]) -> None:
    """Set the contract's active revision and lifecycle from all of its revisions."""
    mine = list(revisions)
    active = [r for r in mine if r.lifecycle == "active"]
    shown = max(active or mine, key=lambda r: r.revision, default=None)
    contract.active_revision = shown.revision if active and shown else None
    contract.lifecycle = shown.lifecycle if shown else None


def signature_check(body: dict[str, Any], row: ContractRevisionRow, ring: KeyRing) -> str:
    """`valid`, or the code of the refusal, for the revision's publication signature."""
    assert row.publication is not None
    s = row.publication
    try:
        verify(body, ContractSignature(s.kid, s.alg, s.body_sha256, s.signature), ring)
    except SignatureRefused as refused:
        return refused.code
    return SIGNATURE_VALID


def revisions_needing_bodies(envelopes: Iterable[Envelope[Any]]) -> set[RevisionKey]:
    """Revisions published in `envelopes` whose draft is not among them: their check
    needs the body stored by an earlier batch."""
    published: set[RevisionKey] = set()
    drafted: set[RevisionKey] = set()
    for e in envelopes:
        if e.event_type in ("contract.published", "contract.draft_created"):
            key = (e.project_id, e.payload.contract_id, e.payload.revision)
            (published if e.event_type == "contract.published" else drafted).add(key)
    return published - drafted


def fold_contract_events(
    envelopes: Iterable[Envelope[Any]],
    ring: KeyRing | None = None,
    stored_bodies: Mapping[RevisionKey, dict[str, Any]] | None = None,
) -> tuple[list[ContractRow], list[ContractRevisionRow]]:
    """The `contracts` and `contract_revisions` rows of a set of contract events."""
    contracts: dict[tuple[str, str], ContractRow] = {}
    revisions: dict[RevisionKey, ContractRevisionRow] = {}
    for envelope in envelopes:
        facts = _revision_facts(envelope)
        for fact in facts:
            at = (fact.project_id, fact.contract_id, fact.revision)
            merge_revision(revisions.setdefault(at, ContractRevisionRow(*at)), fact)
        project, contract_id = envelope.project_id, envelope.payload.contract_id
        fact_row = ContractRow(
            project,
            contract_id,
            family=getattr(envelope.payload, "family", None),
            latest_revision=max(f.revision for f in facts),
            updated_at=envelope.occurred_at,
            last_stream_seq=envelope.stream_seq,
        )
        key = (project, contract_id)
        merge_contract(contracts.setdefault(key, ContractRow(*key)), fact_row)
    stored = stored_bodies or {}
    for at, row in revisions.items():
        if ring is None or row.publication is None or row.signature_check is not None:
            continue
        body = row.body if row.body is not None else stored.get(at)
        if body is not None:
            row.signature_check = signature_check(body, row, ring)
    by_contract: dict[tuple[str, str], list[ContractRevisionRow]] = {}
    for row in revisions.values():
        by_contract.setdefault((row.project_id, row.contract_id), []).append(row)
    for of_contract, contract in contracts.items():
        derive(contract, by_contract.get(of_contract, []))
    return list(contracts.values()), list(revisions.values())

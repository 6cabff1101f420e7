"""The contract read models as a pure function of the contract events: one row per
contract and per revision, the lifecycle only moving forward, the publication signature
checked with the ring, and the same rows whatever the order, duplicates or batching."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.records import RawRecord
from awooop.projector.domain.checksums import Checksums, checksums_of_rows, differences
from awooop.projector.domain.contract_models import (
    derive,
    merge_contract,
    merge_revision,
    revisions_needing_bodies,
)
from awooop.projector.domain.contract_rows import ContractRevisionRow, ContractRow
from awooop.projector.domain.offline_fold import fold_records
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.domain.rows import ReadModelRows
from awooop.projector.handlers import ReadModelProjector
from awooop.security.audit_file import AuditEvent
from support.contract_envelopes import (
    OTHER_KEY,
    RING,
    ContractStream,
    policy_body,
    two_revisions,
)

pytestmark = pytest.mark.unit

CODEC = EnvelopeCodec()
EVENTS = two_revisions("acme").events


def _revisions(rows: ReadModelRows) -> dict[int, ContractRevisionRow]:
    return {r.revision: r for r in rows.contract_revisions}


def _only_contract(rows: ReadModelRows) -> ContractRow:
    assert len(rows.contracts) == 1
    return rows.contracts[0]


def test_a_contract_with_two_activations_and_an_abandoned_draft() -> None:
    rows = fold_batch(EVENTS, RING)
    assert rows.runs == []
    assert rows.timeline == []
    contract = _only_contract(rows)
    assert contract.values() == (
        "acme",
        "payments",
        "policy",
        3,
        2,
        "active",
        EVENTS[-1].occurred_at,
        11,
    )
    first, second, third = (_revisions(rows)[n] for n in (1, 2, 3))
    # Revision 1 was retired by the activation of 2, which names it as superseded.
    assert (first.lifecycle, first.retired_at) == ("retired", EVENTS[8].occurred_at)
    assert (first.signers, first.signature_check, first.signature_kid) == (
        ["alice", "bob"],
        "valid",
        "projector-test",
    )
    assert (first.drafted_at, first.published_at, first.activated_at) == tuple(
        EVENTS[n].occurred_at for n in (0, 1, 4)
    )
    assert first.body == policy_body()
    assert first.author == "carol"
    assert (second.lifecycle, second.signers, second.retired_at) == ("active", ["bob"], None)
    assert second.body_sha256 == EVENTS[6].payload.body_sha256
    assert (third.lifecycle, third.signature_check, third.published_at) == ("retired", None, None)
    assert third.retired_at == EVENTS[10].occurred_at


def test_retiring_the_active_revision_leaves_the_contract_without_one() -> None:
    stream = ContractStream("acme", "budget-cap", family="budget")
    stream.draft({"family": "budget", "cap": 10})
    stream.publish(1)
    stream.activate(1, ("alice",))
    assert _only_contract(fold_batch(stream.events, RING)).active_revision == 1
    stream.retire(1)
    contract = _only_contract(fold_batch(stream.events, RING))
    assert (contract.active_revision, contract.lifecycle, contract.family) == (
        None,
        "retired",
        "budget",
    )


def test_a_draft_only_contract_shows_its_latest_revision_state() -> None:
    stream = ContractStream("acme", "drafty")
    stream.draft(policy_body())
    contract = _only_contract(fold_batch(stream.events, RING))
    assert (contract.lifecycle, contract.active_revision, contract.latest_revision) == (
        "draft",
        None,
        1,
    )


def test_the_signature_check_names_the_refusal() -> None:
    stream = ContractStream("acme", "checked")
    stream.draft(policy_body())
    stream.publish(1, signed_body=policy_body(note="another body"))  # a tampered body
    stream.draft(policy_body(note="two"))
    stream.publish(2, key=OTHER_KEY)  # a key the ring does not hold
    stream.draft(policy_body(note="three"))
    stream.publish(3)
    checks = {n: r.signature_check for n, r in _revisions(fold_batch(stream.events, RING)).items()}
    assert checks == {1: "E-CONTRACT-SIG-DIGEST", 2: "E-CONTRACT-SIG-KID", 3: "valid"}
    unchecked = _revisions(fold_batch(stream.events))  # no ring: nothing verified
    assert {r.signature_check for r in unchecked.values()} == {None}
    assert unchecked[2].signature_kid == "not-in-the-ring"


def test_a_publication_whose_draft_came_earlier_is_checked_against_the_stored_body() -> None:
    stream = ContractStream("acme", "later")
    draft, published = stream.draft(policy_body()), stream.publish(1)
    key = ("acme", "later", 1)
    assert revisions_needing_bodies([published]) == {key}
    assert revisions_needing_bodies([draft, published]) == set()
    alone = _revisions(fold_batch([published], RING, {key: policy_body()}))[1]
    assert (alone.signature_check, alone.lifecycle, alone.body) == ("valid", "published", None)
    tampered = _revisions(fold_batch([published], RING, {key: policy_body(note="x")}))[1]
    assert tampered.signature_check == "E-CONTRACT-SIG-DIGEST"
    assert _revisions(fold_batch([published], RING))[1].signature_check is None


def _digest(rows: ReadModelRows) -> Checksums:
    return checksums_of_rows(rows)


@settings(max_examples=60, deadline=None)
@given(st.permutations(EVENTS), st.lists(st.sampled_from(EVENTS), max_size=6))
def test_any_order_and_any_duplicates_fold_to_the_same_rows(
    order: Sequence[Envelope[Any]], again: list[Envelope[Any]]
) -> None:
    expected = _digest(fold_batch(EVENTS, RING))
    assert differences(_digest(fold_batch([*order, *again], RING)), expected) == []


class StoredModels:
    """The database side of the merge, in memory: what the SQL statements do per batch."""

    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str, int], ContractRevisionRow] = {}
        self.contracts: dict[tuple[str, str], ContractRow] = {}

    def apply(self, batch: Sequence[Envelope[Any]]) -> None:
        wanted = revisions_needing_bodies(batch)
        bodies = {
            k: r.body for k, r in self.revisions.items() if k in wanted and r.body is not None
        }
        rows = fold_batch(batch, RING, bodies)
        for row in rows.contract_revisions:
            key = (row.project_id, row.contract_id, row.revision)
            merge_revision(self.revisions.setdefault(key, ContractRevisionRow(*key)), row)
        for contract in rows.contracts:
            key = (contract.project_id, contract.contract_id)
            stored = self.contracts.setdefault(key, ContractRow(*key))
            merge_contract(stored, contract)
            derive(stored, [r for k, r in self.revisions.items() if k[:2] == key])

    def rows(self) -> ReadModelRows:
        return ReadModelRows([], [], list(self.contracts.values()), list(self.revisions.values()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(EVENTS) - 1), max_size=5), st.booleans())
def test_any_batching_with_redelivery_merges_to_the_fold_of_the_whole(
    cuts: list[int], redeliver: bool
) -> None:
    bounds = [0, *sorted(set(cuts)), len(EVENTS)]
    stored = StoredModels()
    for start, end in itertools.pairwise(bounds):
        stored.apply(EVENTS[start:end])
        if redeliver:
            stored.apply(EVENTS[max(0, start - 2) : end])
    assert differences(_digest(stored.rows()), _digest(fold_batch(EVENTS, RING))) == []


def test_an_older_event_never_moves_the_lifecycle_back() -> None:
    stored = StoredModels()
    stored.apply(EVENTS)
    stored.apply(EVENTS[:3])  # the draft, publication and a signature of revision 1 again
    revisions = {k[2]: r.lifecycle for k, r in stored.revisions.items()}
    assert revisions == {1: "retired", 2: "active", 3: "retired"}
    assert stored.contracts["acme", "payments"].updated_at == EVENTS[-1].occurred_at


def _raw(env: Envelope[Any]) -> RawRecord:
    return RawRecord(
        topic=Topics.CONTRACT_EVENTS.name,
        partition=0,
        offset=0,
        key=env.stream_id.encode(),
        value=CODEC.encode(env),
        headers=tuple(record_headers(env, make_traceparent(env.trace_id))),
        timestamp=0,
    )


def test_a_contract_event_is_projected_though_its_correlation_id_is_no_run_id() -> None:
    processor = ReadModelProjector(ring=RING)
    for env in EVENTS:
        assert processor.handles(_raw(env))
        assert processor.decode(_raw(env)).body == env


def test_the_offline_fold_folds_contract_records_as_live() -> None:
    headers = [tuple(record_headers(e, make_traceparent(e.trace_id))) for e in EVENTS]
    records = [
        AuditEvent(Topics.CONTRACT_EVENTS.name, 0, n, 0, b"k", h, CODEC.encode(e))
        for n, (e, h) in enumerate(zip(EVENTS, headers, strict=True))
    ]
    fold = fold_records(records, ring=RING)
    assert fold.counts["folded"] == len(EVENTS)
    assert differences(fold.checksums, _digest(fold_batch(EVENTS, RING))) == []
    assert fold.checksums.table_total("contract_revisions").rows == 3
    assert fold.checksums.table_total("contracts").rows == 1

"""Scenarios of the contract lifecycle: given a contract's past events, when a command
arrives, then this event or this refusal; and properties over random command sequences."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awooop.approval.domain import (
    DEFAULT_REQUIRED_SIGNATURES,
    Contract,
    ContractRefused,
    activate,
    create_draft,
    publish,
    required_signatures,
    retire,
    revision_ref,
    sign,
)
from awooop.approval.domain.commands import ContractCommand, decide
from awooop.approval.domain.contracts import ContractEvent
from awooop.approval.domain.revisions import STATE_ORDER
from awooop.contracts.events.payloads.contract import (
    KID_PATTERN,
    ContractActivated,
    ContractDraftCreated,
    ContractFamilyName,
    ContractPublished,
    ContractRetired,
    ContractSigned,
    PublicationSignature,
)
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.infra.settings import Settings, SettingsError
from awooop.security import signing_keys
from awooop.security.canonical_json import canonical_sha256
from awooop.security.contract_signing import ContractSignature, SignatureRefused, verify
from awooop.security.signing_keys import (
    KeyRing,
    SigningKey,
    generate_ed25519_keys,
    generate_hs256_key,
)

pytestmark = pytest.mark.unit

PROJECT = "acme"
CONTRACT = "main-policy"
AUTHOR = "user:alice"
_ED25519 = generate_ed25519_keys("approval-1")
KEY = SigningKey.from_spec(_ED25519.signing_spec)
RING = KeyRing.from_spec(_ED25519.verifying_spec)


def valid_body(family: str = "policy", name: str = "full.json") -> dict[str, Any]:
    fixture = next(f for f in CONTRACT_FAMILIES[family].fixtures("valid") if f.name == name)
    body: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    return body


def given_events(*events: ContractEvent) -> Contract:
    return Contract.fold(PROJECT, CONTRACT, events)


def drafted(revision: int = 1, body: dict[str, Any] | None = None) -> ContractDraftCreated:
    return ContractDraftCreated(
        contract_id=CONTRACT,
        family="policy",
        revision=revision,
        body=valid_body() if body is None else body,
        author=AUTHOR,
    )


def published_events(revision: int = 1, *signers: str) -> list[ContractEvent]:
    """The events of a published revision (drafted after ``revision - 1`` others)."""
    events: list[ContractEvent] = [drafted(n) for n in range(1, revision + 1)]
    state = given_events(*events)
    events.append(publish(state, revision, KEY))
    events += [ContractSigned(contract_id=CONTRACT, revision=revision, signer=s) for s in signers]
    return events


def refusal(code: str) -> Any:
    return pytest.raises(ContractRefused, match=f"^{code}: ")


# -- drafts ---------------------------------------------------------------------------


def test_given_no_contract_when_drafted_then_revision_1_then_2() -> None:
    first = create_draft(given_events(), "policy", valid_body(), AUTHOR)
    assert (first.revision, first.family, first.author) == (1, "policy", AUTHOR)
    assert first.body == valid_body()
    second = create_draft(given_events(first), "policy", valid_body(name="minimal.json"), "bob")
    assert second.revision == 2


def test_a_draft_is_not_checked_against_its_family_but_publishing_it_is() -> None:
    incomplete = {"family": "policy", "mode": "active"}
    draft = create_draft(given_events(), "policy", incomplete, AUTHOR)
    with refusal("E-CONTRACT-BODY-INVALID") as refused:
        publish(given_events(draft), 1, KEY)
    assert "(root): 'approvers' is a required property" in refused.value.problems


def test_a_draft_body_must_have_a_canonical_json_form() -> None:
    with refusal("E-CONTRACT-BODY-INVALID") as refused:
        create_draft(given_events(), "budget", {"limits": [{"max_tokens": 2**60}]}, AUTHOR)
    assert refused.value.problems == (
        "/limits/0/max_tokens: the integer is beyond ±(2**53 - 1), no canonical JSON form",
    )


def test_a_new_draft_naming_another_family_is_refused() -> None:
    state = given_events(drafted())
    with refusal("E-CONTRACT-FAMILY"):
        create_draft(state, "tool", valid_body("tool", "minimal.json"), AUTHOR)
    with refusal("E-CONTRACT-FAMILY"):
        create_draft(given_events(), "policies", valid_body(), AUTHOR)


# -- publishing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", [_ED25519, generate_hs256_key("approval-hs")], ids=["EdDSA", "HS256"]
)
def test_a_published_signature_verifies_with_the_matching_ring_and_not_a_tampered_body(
    spec: signing_keys.KeySpecPair,
) -> None:
    published = publish(given_events(drafted()), 1, SigningKey.from_spec(spec.signing_spec))
    body = valid_body()
    assert published.body_sha256 == canonical_sha256(body)
    signature = ContractSignature(**published.signature.model_dump())
    ring = KeyRing.from_spec(spec.verifying_spec)
    verify(body, signature, ring)
    tampered = {**body, "mode": "shadow"}
    with pytest.raises(SignatureRefused) as refused:
        verify(tampered, signature, ring)
    assert refused.value.code == "E-CONTRACT-SIG-DIGEST"
    with pytest.raises(SignatureRefused):
        verify(body, signature, KeyRing.from_spec(generate_ed25519_keys("other").verifying_spec))


def test_an_invalid_body_is_refused_with_the_pointer_of_every_error_sorted() -> None:
    body = valid_body()
    body["mode"] = "paused"
    body["approvers"][0]["approver_id"] = "Alice"
    with refusal("E-CONTRACT-BODY-INVALID") as refused:
        publish(given_events(drafted(body=body)), 1, KEY)
    assert refused.value.problems == (
        "/approvers/0/approver_id: 'Alice' does not match '^[a-z][a-z0-9_.-]{0,63}$'",
        "/mode: 'paused' is not one of ['shadow', 'suggest', 'active']",
    )
    assert refused.value.reason == "; ".join(refused.value.problems)


def test_policy_rules_the_schema_cannot_state_are_checked_at_publish() -> None:
    body = valid_body()
    body["approvals_required"] = 4
    body["approvers"][2]["api_subject"] = body["approvers"][1]["api_subject"]
    with refusal("E-CONTRACT-BODY-INVALID") as refused:
        publish(given_events(drafted(body=body)), 1, KEY)
    assert refused.value.problems == (
        "/approvals_required: 4 approvals are required of only 3 approvers",
        "/approvers/2/api_subject: 'user:bob' is already a subject of /approvers/1",
    )


def test_a_published_revision_cannot_be_edited_an_edit_is_a_new_draft() -> None:
    events = published_events(1)
    state = given_events(*events)
    with refusal("E-CONTRACT-STATE"):
        publish(state, 1, KEY)
    edit = create_draft(state, "policy", valid_body(name="suggest.json"), AUTHOR)
    assert edit.revision == 2
    after = state.apply(edit)
    assert after.revisions[1] == state.revisions[1]
    assert (after.revisions[2].state, after.revisions[2].body) == ("draft", edit.body)
    published = events[1]
    assert isinstance(published, ContractPublished)
    with pytest.raises(ValueError, match="frozen"):
        published.body_sha256 = "0" * 64  # type: ignore[misc]


def test_commands_on_a_missing_contract_or_revision_are_refused() -> None:
    with refusal("E-CONTRACT-UNKNOWN"):
        publish(given_events(), 1, KEY)
    state = given_events(drafted())
    for command in (
        lambda: publish(state, 2, KEY),
        lambda: sign(state, 2, "bob"),
        lambda: activate(state, 2, 1),
        lambda: retire(state, 2),
    ):
        with refusal("E-CONTRACT-UNKNOWN"):
            command()


# -- signatures and activation ----------------------------------------------------------


def test_one_signature_waits_and_a_second_distinct_signer_activates_a_2_signature_family() -> None:
    needed = required_signatures("policy")
    assert needed == 2
    state = given_events(*published_events(1))
    first = sign(state, 1, "user:bob")
    state = state.apply(first)
    with refusal("E-CONTRACT-STATE") as waiting:
        activate(state, 1, needed)
    assert "has 1 of the 2 signatures" in waiting.value.reason
    state = state.apply(sign(state, 1, "user:carol"))
    activated = activate(state, 1, needed)
    assert activated == ContractActivated(
        contract_id=CONTRACT,
        revision=1,
        signers=("user:bob", "user:carol"),
        superseded_revision=None,
    )
    assert given_events(*published_events(1, "user:bob", "user:carol"), activated).active


def test_the_authors_signature_and_a_repeated_signature_do_not_count() -> None:
    state = given_events(*published_events(1, "user:bob"))
    with refusal("E-CONTRACT-SIGNER-AUTHOR"):
        sign(state, 1, AUTHOR)
    with refusal("E-CONTRACT-SIGNER-REPEATED"):
        sign(state, 1, "user:bob")
    # Even a recorded author signature (folded, never decided) is not counted.
    recorded = state.apply(ContractSigned(contract_id=CONTRACT, revision=1, signer=AUTHOR))
    assert recorded.revisions[1].counted_signers == ("user:bob",)
    with refusal("E-CONTRACT-STATE") as waiting:
        activate(recorded, 1, 2)
    assert "has 1 of the 2 signatures" in waiting.value.reason


def _revision_1_in(setup: str) -> Contract:
    """A contract whose revision 1 is a draft, the active revision, or retired after."""
    events: list[ContractEvent] = [drafted()]
    if setup != "draft":
        events = published_events(1, "user:bob")
        events.append(activate(given_events(*events), 1, 1))
    if setup == "retired":
        events.append(ContractRetired(contract_id=CONTRACT, revision=1))
    return given_events(*events)


@pytest.mark.parametrize("setup", ["draft", "active", "retired"])
def test_only_a_published_revision_can_be_signed(setup: str) -> None:
    with refusal("E-CONTRACT-STATE") as refused:
        sign(_revision_1_in(setup), 1, "user:carol")
    assert f"revision 1 is {setup}" in refused.value.reason


def test_activation_supersedes_the_previous_active_revision() -> None:
    first = published_events(1, "user:bob", "user:carol")
    first.append(activate(given_events(*first), 1, 2))
    state = given_events(*first, drafted(2))
    state = state.apply(publish(state, 2, KEY))
    for signer in ("user:dave", "user:erin"):
        state = state.apply(sign(state, 2, signer))
    activated = activate(state, 2, 2)
    assert (activated.revision, activated.superseded_revision) == (2, 1)
    after = state.apply(activated)
    assert {n: r.state for n, r in after.revisions.items()} == {1: "retired", 2: "active"}
    assert after.active is not None
    assert after.active.number == 2


def test_a_revision_older_than_the_active_one_cannot_be_activated() -> None:
    state = given_events(*published_events(2, "user:bob"))
    state = state.apply(publish(state, 1, KEY))
    state = state.apply(sign(state, 1, "user:carol"))
    state = state.apply(activate(state, 2, 1))
    with refusal("E-CONTRACT-STATE") as refused:
        activate(state, 1, 1)
    assert "older than the active revision 2" in refused.value.reason


@pytest.mark.parametrize("setup", ["draft", "active", "retired"])
def test_only_a_published_revision_can_be_activated(setup: str) -> None:
    with refusal("E-CONTRACT-STATE"):
        activate(_revision_1_in(setup), 1, 1)


def test_required_signatures_defaults_and_overrides() -> None:
    assert {f: required_signatures(f) for f in CONTRACT_FAMILIES} == {
        "agent": 1,
        "tool": 1,
        "policy": 2,
        "budget": 2,
        "channel_binding": 1,
        "runtime_run_state": 1,
    }
    assert DEFAULT_REQUIRED_SIGNATURES == {"policy": 2, "budget": 2}
    assert required_signatures("tool", {"tool": 3, "policy": 1}) == 3
    assert required_signatures("policy", {"policy": 1}) == 1
    with pytest.raises(ValueError, match="at least 1"):
        required_signatures("agent", {"agent": 0})
    with pytest.raises(KeyError):
        required_signatures("billing")
    with pytest.raises(ValueError, match="at least 1"):
        activate(given_events(*published_events(1, "user:bob")), 1, 0)


# -- retirement -----------------------------------------------------------------------


def test_retiring_the_active_revision_leaves_none_active() -> None:
    events = published_events(1, "user:bob")
    events.append(activate(given_events(*events), 1, 1))
    state = given_events(*events)
    retired = retire(state, 1)
    assert retired == ContractRetired(contract_id=CONTRACT, revision=1)
    after = state.apply(retired)
    assert after.active is None
    with refusal("E-CONTRACT-STATE"):
        retire(after, 1)


def test_a_withdrawn_published_revision_and_an_abandoned_draft_never_activate() -> None:
    state = given_events(*published_events(1, "user:bob", "user:carol"), drafted(2))
    state = state.apply(retire(state, 1)).apply(retire(state, 2))
    assert [r.state for r in state.revisions.values()] == ["retired", "retired"]
    with refusal("E-CONTRACT-STATE"):
        activate(state, 1, 1)
    with refusal("E-CONTRACT-STATE"):
        publish(state, 2, KEY)


# -- folding --------------------------------------------------------------------------


def _history() -> list[ContractEvent]:
    events = published_events(1, "user:bob", "user:carol")
    events.append(activate(given_events(*events), 1, 2))
    state = given_events(*events)
    events.append(create_draft(state, "policy", valid_body(name="minimal.json"), "user:bob"))
    state = given_events(*events)
    events.append(publish(state, 2, KEY))
    events.append(ContractSigned(contract_id=CONTRACT, revision=2, signer="user:carol"))
    events.append(ContractSigned(contract_id=CONTRACT, revision=2, signer="user:dave"))
    events.append(activate(given_events(*events), 2, 2))
    events.append(ContractRetired(contract_id=CONTRACT, revision=2))
    return events


def test_folding_the_same_events_twice_gives_the_same_state() -> None:
    events = _history()
    once = given_events(*events)
    assert given_events(*events, *events) == once
    assert given_events(*(e for event in events for e in (event, event))) == once
    assert {n: r.state for n, r in once.revisions.items()} == {1: "retired", 2: "retired"}


def test_a_stream_the_contract_cannot_hold_is_refused_as_corrupt() -> None:
    state = given_events(drafted())
    other = ContractRetired(contract_id="another", revision=1)
    never = ContractRetired(contract_id=CONTRACT, revision=3)
    gap = drafted(3)
    rewritten = drafted(1, valid_body(name="minimal.json"))
    early = ContractSigned(contract_id=CONTRACT, revision=1, signer="user:bob")
    for event in (other, never, gap, rewritten, early):
        with pytest.raises(ValueError, match=r".") as raised:
            state.apply(event)
        assert not isinstance(raised.value, ContractRefused)


def test_contract_events_travel_in_envelopes_unchanged() -> None:
    codec = EnvelopeCodec()
    for seq, payload in enumerate(_history(), start=1):
        envelope = new_envelope(
            payload,
            occurred_at=dt.datetime(2026, 5, 4, 8, 30, tzinfo=dt.UTC),
            project_id=PROJECT,
            stream_type="contract",
            stream_id=f"{PROJECT}:{CONTRACT}",
            stream_seq=seq,
            trace_id=new_trace_id(),
            correlation_id=CONTRACT,
            actor="service:approval",
            producer="approval",
        )
        assert codec.decode(codec.encode(envelope)) == envelope


def test_payload_vocabularies_match_their_sources() -> None:
    assert set(get_args(ContractFamilyName)) == set(CONTRACT_FAMILIES)
    assert KID_PATTERN == signing_keys.KID_PATTERN
    assert {f.name for f in dataclasses.fields(ContractSignature)} == set(
        PublicationSignature.model_fields
    )


def test_revision_ref_names_the_revision_and_its_digest() -> None:
    digest = canonical_sha256(valid_body())
    assert revision_ref(CONTRACT, 3, digest) == f"{CONTRACT}@3:{digest[:12]}"
    with pytest.raises(ValueError, match="64 lowercase hex"):
        revision_ref(CONTRACT, 3, digest.upper())


# -- properties -----------------------------------------------------------------------

SUBJECTS = ("user:alice", "user:bob", "user:carol", "user:dave")
BODIES = ["full.json", "minimal.json", "broken", "tool"]
Command = tuple[str, int, str, str]
"""(kind, revision counted back from the latest, author or signer, body of a draft)."""

COMMAND = st.tuples(
    st.sampled_from(["draft", "publish", "sign", "activate", "retire"]),
    st.integers(min_value=0, max_value=2),
    st.sampled_from(SUBJECTS),
    st.sampled_from(BODIES),
)


@st.composite
def lifecycle(draw: st.DrawFn) -> list[Command]:
    """A revision taken through draft, publish, some signatures and activation: with
    random signers (the author and repeats among them) it succeeds only sometimes."""
    author = draw(st.sampled_from(SUBJECTS))
    body = draw(st.sampled_from(BODIES))
    signers = draw(st.lists(st.sampled_from(SUBJECTS), max_size=4))
    tail = [("retire", draw(st.integers(0, 1)), author, body)] if draw(st.booleans()) else []
    return [
        ("draft", 0, author, body),
        ("publish", 0, author, body),
        *[("sign", 0, signer, body) for signer in signers],
        ("activate", draw(st.integers(0, 1)), author, body),
        *tail,
    ]


COMMANDS = st.lists(st.one_of(lifecycle(), COMMAND.map(lambda c: [c])), max_size=12).map(
    lambda blocks: [command for block in blocks for command in block]
)


def _decide(state: Contract, command: Command) -> ContractEvent:
    kind, back, subject, body_kind = command
    revision = max(1, state.next_revision - 1 - back)
    if kind == "draft":
        if body_kind == "tool":
            return create_draft(state, "tool", valid_body("tool", "minimal.json"), subject)
        body = {"family": "policy"} if body_kind == "broken" else valid_body(name=body_kind)
        return create_draft(state, "policy", body, subject)
    if kind == "publish":
        return publish(state, revision, KEY)
    if kind == "sign":
        return sign(state, revision, subject)
    if kind == "activate":
        return activate(state, revision, required_signatures("policy"))
    return retire(state, revision)


@settings(max_examples=300, deadline=None)
@given(COMMANDS)
def test_random_command_sequences_keep_the_lifecycle_invariants(commands: list[Command]) -> None:
    state = given_events()
    events: list[ContractEvent] = []
    for command in commands:
        try:
            event = _decide(state, command)
        except ContractRefused:
            continue
        before, state = state, state.apply(event)
        events.append(event)
        assert sum(r.state == "active" for r in state.revisions.values()) <= 1
        for number, revision in before.revisions.items():
            assert STATE_ORDER[state.revisions[number].state] >= STATE_ORDER[revision.state]
        if isinstance(event, ContractActivated):
            candidate = before.revisions[event.revision]
            signed = {
                e.signer
                for e in events
                if isinstance(e, ContractSigned) and e.revision == event.revision
            }
            assert set(event.signers) == signed - {candidate.author}
            assert len(event.signers) >= required_signatures("policy")
        if isinstance(event, ContractPublished):
            body = state.revisions[event.revision].body
            verify(body, ContractSignature(**event.signature.model_dump()), RING)
    assert len({e.family for e in events if isinstance(e, ContractDraftCreated)}) <= 1
    assert given_events(*events) == state
    assert given_events(*events, *events) == state


def test_settings_raise_the_signers_a_family_needs_and_decide_by_them() -> None:
    """`AWOOOP_CONTRACT_SIGNATURES=policy=3`: two signatures wait, a third activates."""
    overrides = Settings.from_env({"AWOOOP_CONTRACT_SIGNATURES": "policy=3, agent=2"})
    assert overrides.contract_required_signatures == {"policy": 3, "agent": 2}
    state = given_events(*published_events(1, "user:bob", "user:carol"))

    def activate_command() -> ContractCommand:
        return ContractCommand("activate", PROJECT, CONTRACT, AUTHOR, "r-1", revision=1)

    signatures = overrides.contract_required_signatures
    with refusal("E-CONTRACT-STATE") as waiting:
        decide(state, activate_command(), KEY, signatures)
    assert "has 2 of the 3 signatures" in waiting.value.reason
    assert decide(state, activate_command(), KEY).status == 200  # the default: 2
    state = state.apply(sign(state, 1, "user:dave"))
    assert decide(state, activate_command(), KEY, signatures).status == 200


@pytest.mark.parametrize("text", ["policy=0", "politics=2", "policy", "policy=two"])
def test_a_malformed_signature_setting_is_refused_naming_the_pair(text: str) -> None:
    with pytest.raises(SettingsError, match="AWOOOP_CONTRACT_SIGNATURES"):
        Settings.from_env({"AWOOOP_CONTRACT_SIGNATURES": text})

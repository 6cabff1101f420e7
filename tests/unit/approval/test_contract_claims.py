"""`channel_bots` and `contract_claims` made again from the log: what their migrations
fill the tables with; and what each family claims."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from awooop.approval.adapters.contract_claims import held
from awooop.contracts.events.payloads.contract import ContractRetired
from awooop.contracts.families.claims import claims_of
from awooop.contracts.families.registry import contract_family
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from support.contracts import agent_body, lifecycle, slack_binding_body, telegram_binding_body

pytestmark = pytest.mark.unit


def test_the_table_made_again_from_the_log_holds_each_active_bindings_bot() -> None:
    """What the migration fills the table with, from streams as the event store keeps
    them: an active binding holds its bot; a retired one, or another family, none."""
    codec = EnvelopeCodec()
    kept = lifecycle("acme", "telegram", telegram_binding_body("11"))
    gone = lifecycle("globex", "telegram", telegram_binding_body("22"))
    last = gone[-1]
    retired = new_envelope(
        ContractRetired(contract_id="telegram", revision=1),
        occurred_at=last.occurred_at,
        project_id="globex",
        stream_type="contract",
        stream_id=last.stream_id,
        stream_seq=last.stream_seq + 1,
        trace_id=new_trace_id(),
        correlation_id=last.stream_id,
        actor="user:alice",
        producer="approval",
    )
    moved = lifecycle("acme", "other", telegram_binding_body("33"))
    moved += lifecycle("acme", "other", telegram_binding_body("44"), revision=2, superseded=1)
    agent = lifecycle("acme", "demo-agent", agent_body())
    stored = [(e.stream_id, codec.encode(e)) for e in [*kept, *gone, retired, *moved, *agent]]
    found = held(stored)
    assert sorted(found.bots) == [
        ("telegram|11", "acme", "telegram"),
        ("telegram|44", "acme", "other"),
    ]
    assert sorted(found.claims) == [
        ("acme", "agent|demo-agent", "demo-agent"),
        ("acme", "chat|telegram|11|*", "telegram"),
        ("acme", "chat|telegram|44|*", "other"),
    ]
    assert (found.unreadable, found.lost_bots, found.lost_claims) == ([], [], [])


def test_a_bot_two_projects_bound_goes_to_the_first_and_an_unreadable_stream_is_left_out() -> None:
    """Bindings from before the table: the project that bound the bot first keeps it,
    with every binding of its own; another project's, and a stream that cannot be read,
    are left out with the reason (the upgrade goes on)."""
    codec = EnvelopeCodec()
    first = lifecycle("zeta", "telegram", telegram_binding_body("55"))
    later = lifecycle("acme", "telegram", telegram_binding_body("55"))
    named = telegram_binding_body("55", agent_id="vip")
    named["channel"]["chat_ids"] = ["-5"]
    own = lifecycle("zeta", "vip", named)
    broken = lifecycle("omega", "telegram", telegram_binding_body("66"))
    stored = [(e.stream_id, codec.encode(e)) for e in [*later, *first, *own]]
    stored += [(e.stream_id, codec.encode(e)) for e in broken[:-1]]
    stored.append((broken[-1].stream_id, b"{not json"))
    found = held(stored)
    assert sorted(found.bots) == [
        ("telegram|55", "zeta", "telegram"),
        ("telegram|55", "zeta", "vip"),
    ]
    assert sorted(found.claims) == [
        ("zeta", "chat|telegram|55|*", "telegram"),
        ("zeta", "chat|telegram|55|-5", "vip"),
    ]
    (unreadable,) = found.unreadable
    assert unreadable.startswith("omega:telegram: ")
    assert found.lost_bots == ["acme:telegram: telegram|55 is held by another project"]
    assert found.lost_claims == []


def test_a_claim_two_contracts_of_a_project_held_goes_to_the_first() -> None:
    codec = EnvelopeCodec()
    first = lifecycle("acme", "ops-agent", agent_body())
    later = lifecycle("acme", "ops-agent-copy", agent_body())
    found = held((e.stream_id, codec.encode(e)) for e in [*later, *first])
    assert found.claims == [("acme", "agent|demo-agent", "ops-agent")]
    assert found.lost_claims == ["acme:ops-agent-copy: agent|demo-agent is held by ops-agent"]


@pytest.mark.parametrize(
    ("family", "name", "claims"),
    [
        ("agent", "full.json", ("agent|ops-bot_2",)),
        ("tool", "full.json", ("tool|restart_service__k8s-ops",)),
        ("policy", "full.json", ("policy",)),
        ("budget", "full.json", ("budget",)),
        (
            "channel_binding",
            "telegram_full.json",
            (
                "chat|telegram|12345678901234567890|-1001234567890",
                "chat|telegram|12345678901234567890|-42",
                "chat|telegram|12345678901234567890|424242",
            ),
        ),
    ],
)
def test_each_family_claims_what_the_readers_fold_keys_it_by(
    family: str, name: str, claims: tuple[str, ...]
) -> None:
    fixture = next(f for f in contract_family(family).fixtures("valid") if f.name == name)
    assert claims_of(family, json.loads(fixture.read_text(encoding="utf-8"))) == claims


def test_a_binding_listing_no_chat_claims_every_chat_of_its_bot() -> None:
    assert claims_of("channel_binding", slack_binding_body("T0123", "A0456")) == (
        "chat|slack|T0123|A0456|*",
    )


def test_an_invalid_body_claims_nothing_but_is_refused() -> None:
    with pytest.raises(ValidationError, match="agent_id"):
        claims_of("agent", {"family": "agent"})

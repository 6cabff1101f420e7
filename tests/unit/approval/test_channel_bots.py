"""`channel_bots` made again from the log: what its migration fills the table with."""

from __future__ import annotations

import pytest

from awooop.approval.adapters.channel_bots import held
from awooop.contracts.events.payloads.contract import ContractRetired
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import new_trace_id
from awooop.contracts.records.typed_envelopes import new_envelope
from support.contracts import agent_body, lifecycle, telegram_binding_body

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
    assert sorted(found.rows) == [
        ("telegram|11", "acme", "telegram"),
        ("telegram|44", "acme", "other"),
    ]
    assert found.left_out == []


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
    assert sorted(found.rows) == [
        ("telegram|55", "zeta", "telegram"),
        ("telegram|55", "zeta", "vip"),
    ]
    assert len(found.left_out) == 2
    assert found.left_out[0].startswith("omega:telegram: ")
    assert found.left_out[1] == "acme:telegram: telegram|55 is held by another project"

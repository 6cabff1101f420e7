"""The readers' contract fold: idempotent, verified with public keys, one active revision."""

from __future__ import annotations

from typing import Any

import pytest

from awooop.contracts.families.agent import Agent
from awooop.infra.contracts.active import ContractFold
from awooop.security.signing_keys import KeyRing, generate_ed25519_keys
from support.contracts import (
    TEST_RING,
    agent_body,
    lifecycle,
    slack_binding_body,
    telegram_binding_body,
)

pytestmark = pytest.mark.unit


def fold_of(*streams: list[Any]) -> ContractFold:
    fold = ContractFold(KeyRing.from_spec(TEST_RING))
    for stream in streams:
        for envelope in stream:
            fold.apply(envelope)
    return fold


def test_a_repeated_event_changes_nothing() -> None:
    events = lifecycle("acme", "demo-agent", agent_body())
    fold = fold_of(events)
    before = dict(fold.records)
    assert all(fold.apply(envelope) == [] for envelope in events)
    assert fold.records == before
    assert fold.view().agent("acme", "demo-agent") is not None


def test_a_new_revision_supersedes_the_old_which_stays_known_by_its_ref() -> None:
    first = lifecycle("acme", "demo-agent", agent_body(max_attempts=2))
    second = lifecycle("acme", "demo-agent", agent_body(max_attempts=5), revision=2, superseded=1)
    view = fold_of(first, second).view()
    active = view.agent("acme", "demo-agent")
    assert active is not None
    assert active.revision == 2
    assert active.document.max_attempts == 5
    old_ref = fold_of(first).view().refs()[("acme", "demo-agent")]
    old = view.at("acme", old_ref, Agent)
    assert old is not None
    assert not old.active
    assert old.document.max_attempts == 2
    assert view.at("globex", old_ref, Agent) is None  # a ref is only its project's


def test_a_revision_signed_by_a_key_outside_the_ring_is_never_active() -> None:
    stranger = generate_ed25519_keys("test-contracts")  # same kid, another key
    events = lifecycle("acme", "demo-agent", agent_body(), signing_spec=stranger.signing_spec)
    fold = fold_of(events)
    (record,) = fold.records.values()
    assert record.state == "active"  # what the approval service decided...
    assert record.refusal is not None
    assert record.refusal.startswith("E-CONTRACT-SIG-BAD")
    view = fold.view()
    assert view.agent("acme", "demo-agent") is None  # ...is not what this reader uses
    assert view.skipped
    assert "E-CONTRACT-SIG-BAD" in view.skipped[0]


def test_a_body_altered_after_signing_is_refused_by_its_digest() -> None:
    events = lifecycle("acme", "demo-agent", agent_body())
    drafted = events[0]
    altered = drafted.payload.model_copy(update={"body": agent_body(max_attempts=9)})
    fold = fold_of([drafted.model_copy(update={"payload": altered}), *events[1:]])
    (record,) = fold.records.values()
    assert record.refusal is not None
    assert record.refusal.startswith("E-CONTRACT-SIG-DIGEST")
    assert fold.view().agent("acme", "demo-agent") is None


def test_a_retired_revision_leaves_no_active_one() -> None:
    events = lifecycle("acme", "demo-agent", agent_body())
    from awooop.contracts.events.payloads.contract import ContractRetired

    retired = events[-1].model_copy(
        update={
            "payload": ContractRetired(contract_id="demo-agent", revision=1),
            "stream_seq": events[-1].stream_seq + 1,
        }
    )
    view = fold_of([*events, retired]).view()
    assert view.agent("acme", "demo-agent") is None
    assert view.at("acme", fold_of(events).view().refs()[("acme", "demo-agent")], Agent)


def test_a_chat_named_by_a_binding_wins_over_the_bots_catch_all() -> None:
    catch_all = telegram_binding_body("77", agent_id="general")
    named = telegram_binding_body("77", agent_id="vip")
    named["channel"]["chat_ids"] = ["-5"]
    view = fold_of(
        lifecycle("acme", "all-chats", catch_all), lifecycle("acme", "vip-chat", named)
    ).view()
    vip = view.telegram_binding("77", "-5")
    other = view.telegram_binding("77", "-6")
    assert vip is not None
    assert vip.document.agent_id == "vip"
    assert other is not None
    assert other.document.agent_id == "general"
    assert view.telegram_binding("78", "-5") is None


def test_a_bot_stays_with_the_binding_activated_first_whatever_the_read_order() -> None:
    first = lifecycle("zeta", "a-telegram", telegram_binding_body("99"))
    later = lifecycle("acme", "a-telegram", telegram_binding_body("99"))
    forwards = fold_of(first, later).view()
    backwards = fold_of(later, first).view()
    for view in (forwards, backwards):
        found = view.telegram_binding("99", "1")
        assert found is not None
        assert found.project_id == "zeta"
        assert len(view.conflicts) == 1
        assert view.conflicts[0].startswith("acme:")


def test_another_project_naming_a_chat_of_a_held_bot_takes_no_chat_of_it() -> None:
    """The bot's catch-all belongs to zeta: acme's later binding of one chat of the same
    bot would win that chat by the named-chat rule, which would refuse zeta's messages
    from it. It claims nothing, whatever the read order."""
    named = telegram_binding_body("99", agent_id="vip")
    named["channel"]["chat_ids"] = ["-5"]
    first = lifecycle("zeta", "a-telegram", telegram_binding_body("99"))
    later = lifecycle("acme", "vip-chat", named)
    for view in (fold_of(first, later).view(), fold_of(later, first).view()):
        found = view.telegram_binding("99", "-5")
        assert found is not None
        assert found.project_id == "zeta"
        assert view.outbound_binding("acme", "telegram", "-5")[0] is None
        (conflict,) = view.conflicts
        assert conflict.startswith("acme:")
        assert "held by zeta" in conflict


def _slack_binding_body(channel_ids: list[str]) -> dict[str, Any]:
    return slack_binding_body("T0123", "A0456", channel_ids)


def test_a_slack_app_belongs_to_one_project_even_in_channels_its_binding_does_not_name() -> None:
    first = lifecycle("zeta", "a-slack", _slack_binding_body(["C100"]))
    later = lifecycle("acme", "all-channels", _slack_binding_body([]))
    view = fold_of(first, later).view()
    held = view.slack_binding("T0123", "A0456", "C100")
    assert held is not None
    assert held.project_id == "zeta"
    assert view.slack_binding("T0123", "A0456", "C200") is None
    assert [c.split(":")[0] for c in view.conflicts] == ["acme"]
    # The same app in another workspace is another bot.
    elsewhere = _slack_binding_body([])
    elsewhere["channel"]["team_id"] = "T0999"
    view = fold_of(first, lifecycle("acme", "all-channels", elsewhere)).view()
    other = view.slack_binding("T0999", "A0456", "C200")
    assert other is not None
    assert other.project_id == "acme"
    assert view.conflicts == []

"""What an outbound message becomes at its provider: given an ``OutboundRequested``, then
the Telegram or Slack calls (split, threaded, with buttons, or an edit), and the binding
it leaves through."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts.events.payloads.channel import Button, OutboundRequested
from awooop.ingress.outbound.rendering import (
    SLACK_SECTION_LIMIT,
    TELEGRAM_MAX_PARTS,
    TELEGRAM_TEXT_LIMIT,
    TRUNCATION_MARKER,
    ProviderCall,
    Unrenderable,
    render,
    split_text,
    utf16_units,
)
from support.contracts import agent_body, slack_binding_body, telegram_binding_body, view_of

pytestmark = pytest.mark.unit

APPROVE = (Button(label="Approve", value="approve:42"), Button(label="Deny", value="deny:42"))


def request(**changes: Any) -> OutboundRequested:
    fields: dict[str, Any] = {
        "run_id": uuid.uuid4(),
        "kind": "final",
        "channel_type": "telegram",
        "chat_id": "-100777",
        "thread_id": None,
        "reply_to": None,
        "text": "All green.",
        "buttons": (),
        "edit_of": None,
        "deliver_before": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    }
    return OutboundRequested(**(fields | changes))


def calls_of(message: OutboundRequested, edit_target: str | None = None) -> list[ProviderCall]:
    calls = render(message, edit_target)
    assert not isinstance(calls, Unrenderable), calls
    return calls


def words(count: int) -> str:
    return " ".join(f"word{n}" for n in range(count))


# Telegram


def test_a_short_text_is_one_plain_send_message() -> None:
    (call,) = calls_of(request())
    assert call == ProviderCall("sendMessage", {"chat_id": "-100777", "text": "All green."})


def test_a_5000_character_text_becomes_two_parts_split_at_a_space() -> None:
    text = words(700)[:5000]
    calls = calls_of(request(text=text))
    assert [c.method for c in calls] == ["sendMessage", "sendMessage"]
    parts = [c.body["text"] for c in calls]
    assert all(utf16_units(part) <= TELEGRAM_TEXT_LIMIT for part in parts)
    assert " ".join(parts) == text  # only the separating space is gone
    assert TRUNCATION_MARKER not in parts[-1]


def test_a_newline_in_the_second_half_is_preferred_to_a_later_space() -> None:
    text = "a" * 3000 + "\n" + "b " * 1000 + "c" * 2000
    first, second = (c.body["text"] for c in calls_of(request(text=text)))
    assert first == "a" * 3000
    assert second.startswith("b b")


def test_emoji_count_twice_as_telegram_counts_utf16_code_units() -> None:
    text = "\N{GRINNING FACE}" * 3000  # 6,000 code units in 3,000 characters
    parts = [c.body["text"] for c in calls_of(request(text=text))]
    assert [utf16_units(part) for part in parts] == [4096, 6000 - 4096]
    assert "".join(parts) == text


def test_past_the_last_part_the_text_is_cut_with_a_visible_marker() -> None:
    text = "\N{GRINNING FACE}" * 16_384  # 32,768 code units: eight full messages' worth
    parts = [c.body["text"] for c in calls_of(request(text=text))]
    assert len(parts) == TELEGRAM_MAX_PARTS
    assert all(utf16_units(part) <= TELEGRAM_TEXT_LIMIT for part in parts)
    assert parts[-1].endswith(TRUNCATION_MARKER)
    assert not any(part.endswith(TRUNCATION_MARKER) for part in parts[:-1])


def test_a_threaded_reply_with_buttons_places_each_field_on_its_part() -> None:
    message = request(text=words(1000), thread_id="77", reply_to="501", buttons=APPROVE)
    calls = calls_of(message)
    assert len(calls) > 1
    assert all(c.body["message_thread_id"] == 77 for c in calls)
    assert calls[0].body["reply_parameters"] == {
        "message_id": 501,
        "allow_sending_without_reply": True,
    }
    assert all("reply_parameters" not in c.body for c in calls[1:])
    keyboard = [
        [
            {"text": "Approve", "callback_data": "approve:42"},
            {"text": "Deny", "callback_data": "deny:42"},
        ]
    ]
    assert calls[-1].body["reply_markup"] == {"inline_keyboard": keyboard}
    assert all("reply_markup" not in c.body for c in calls[:-1])


@pytest.mark.parametrize(
    ("field", "value"), [("reply_to", "1712345678.000100"), ("thread_id", "x")]
)
def test_an_id_telegram_cannot_take_is_unrenderable(field: str, value: str) -> None:
    refused = render(request(**{field: value}), None)
    assert isinstance(refused, Unrenderable)
    assert repr(value) in refused.reason


def test_an_edit_rewrites_the_one_message_with_its_text_cut_to_one_part() -> None:
    (call,) = calls_of(request(text=words(1000), buttons=APPROVE), edit_target="9")
    assert call.method == "editMessageText"
    assert call.edits == "9"
    assert call.body["message_id"] == 9
    assert call.body["chat_id"] == "-100777"
    assert utf16_units(call.body["text"]) <= TELEGRAM_TEXT_LIMIT
    assert call.body["text"].endswith(TRUNCATION_MARKER)
    assert "inline_keyboard" in call.body["reply_markup"]


def test_an_edit_target_that_is_no_telegram_id_posts_anew() -> None:
    (call,) = calls_of(request(), edit_target="1712345678.000100")
    assert call.method == "sendMessage"


# Slack


def slack_request(**changes: Any) -> OutboundRequested:
    return request(channel_type="slack", chat_id="C0ABCDEF", **changes)


def test_a_slack_message_is_one_post_with_the_whole_text_and_no_blocks() -> None:
    text = words(1500)  # over 10,000 characters
    (call,) = calls_of(slack_request(text=text))
    assert call.method == "chat.postMessage"
    assert call.body == {"channel": "C0ABCDEF", "text": text}


@pytest.mark.parametrize(
    ("thread_id", "reply_to", "thread_ts"),
    [("1712.000100", "1712.000200", "1712.000100"), (None, "1712.000200", "1712.000200")],
)
def test_a_slack_reply_goes_into_the_thread_or_starts_one_under_the_message(
    thread_id: str | None, reply_to: str, thread_ts: str
) -> None:
    (call,) = calls_of(slack_request(thread_id=thread_id, reply_to=reply_to))
    assert call.body["thread_ts"] == thread_ts


def test_slack_buttons_are_block_kit_sections_then_one_actions_block() -> None:
    text = words(1500)
    (call,) = calls_of(slack_request(text=text, buttons=APPROVE, kind="approval_request"))
    blocks = call.body["blocks"]
    sections, actions = blocks[:-1], blocks[-1]
    assert len(sections) > 1
    assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in sections)
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_LIMIT for b in sections)
    assert " ".join(b["text"]["text"] for b in sections) == text
    assert actions["type"] == "actions"
    assert [(e["text"]["text"], e["value"]) for e in actions["elements"]] == [
        ("Approve", "approve:42"),
        ("Deny", "deny:42"),
    ]
    assert len({e["action_id"] for e in actions["elements"]}) == 2
    assert call.body["text"] == text  # the notification's fallback


def test_a_slack_edit_updates_by_ts_and_sends_blocks_so_old_buttons_go() -> None:
    (call,) = calls_of(slack_request(text="Approved."), edit_target="1712.000300")
    assert call.method == "chat.update"
    assert call.edits == "1712.000300"
    assert call.body["ts"] == "1712.000300"
    assert call.body["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Approved."}}
    ]
    assert "thread_ts" not in call.body


# Splitting, for any text


@given(
    st.text(alphabet=st.sampled_from("ab \n\N{GRINNING FACE}é"), max_size=400),
    st.integers(min_value=16, max_value=60),
    st.integers(min_value=1, max_value=6),
)
def test_parts_fit_and_keep_every_visible_character_in_order(
    text: str, limit: int, max_parts: int
) -> None:
    parts = split_text(text, limit, max_parts, utf16_units)
    assert 1 <= len(parts) <= max_parts
    if len(parts) > 1 or utf16_units(text) > limit:
        assert all(utf16_units(part) <= limit for part in parts)
    truncated = parts[-1].endswith(TRUNCATION_MARKER) and not text.endswith(TRUNCATION_MARKER)
    kept = "".join(parts).replace(TRUNCATION_MARKER, "") if truncated else "".join(parts)
    visible = [char for char in text if not char.isspace()]
    shown = [char for char in kept if not char.isspace()]
    if truncated:
        assert shown == visible[: len(shown)]
    else:
        assert shown == visible


# The binding an answer leaves through


def telegram(bot_id: str, *chats: str) -> dict[str, Any]:
    body = telegram_binding_body(bot_id)
    body["channel"]["chat_ids"] = list(chats)
    return body


def slack(channels: list[str], app_id: str = "A0APP") -> dict[str, Any]:
    return slack_binding_body("T0TEAM", app_id, channels)


def test_a_binding_naming_the_chat_wins_over_the_catch_all() -> None:
    view = view_of(
        ("acme", {"agent": agent_body(), "all": telegram("111"), "ops": telegram("222", "-5")})
    )
    found, why = view.outbound_binding("acme", "telegram", "-5")
    assert found is not None
    assert found.contract_id == "ops"
    assert found.ref in why
    other, _ = view.outbound_binding("acme", "telegram", "-6")
    assert other is not None
    assert other.contract_id == "all"


def test_two_candidates_of_one_rank_are_ambiguous_and_say_which() -> None:
    view = view_of(("acme", {"one": telegram("111"), "two": telegram("222")}))
    found, why = view.outbound_binding("acme", "telegram", "-5")
    assert found is None
    assert why.startswith("ambiguous: 2 catch-all bindings")
    assert "one@1" in why
    assert "two@1" in why


def test_no_binding_of_the_project_or_the_channel_type_is_none_with_the_reason() -> None:
    view = view_of(("acme", {"all": telegram("111")}), ("globex", {"s": slack([])}))
    assert view.outbound_binding("acme", "slack", "C0ABC") == (
        None,
        "no active channel_binding covers slack chat 'C0ABC' of project 'acme'",
    )
    assert view.outbound_binding("initech", "telegram", "-5")[0] is None
    found, _ = view.outbound_binding("globex", "slack", "C0ABC")
    assert found is not None


def test_a_chat_of_a_held_bot_another_project_names_is_still_answered_by_its_holder() -> None:
    """globex's binding names a chat of acme's bot: it claims nothing (the bot is
    acme's), so acme's catch-all both receives that chat and answers it."""
    view = view_of(
        ("acme", {"all": telegram("111")}), ("globex", {"theirs": telegram("111", "-5")})
    )
    for chat in ("-5", "-6"):
        found = view.outbound_binding("acme", "telegram", chat)[0]
        assert found is not None
        assert found.project_id == "acme"
    assert view.outbound_binding("globex", "telegram", "-5")[0] is None

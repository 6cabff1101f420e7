"""The Telegram normaliser: given an update as the Bot API sends it, then one event (a
message, a button press, an ignored record) or a refusal with its reason."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts.events.payloads.fields import PLATFORM_SUBJECT_PATTERN
from awooop.contracts.events.payloads.ingress import (
    Attachment,
    ButtonPressed,
    Entity,
    InboundIgnored,
    MessageReceived,
)
from awooop.contracts.records.envelope import new_event_id
from awooop.contracts.records.inbound import InboundRecord
from awooop.ingress.domain import (
    Binding,
    InboundRefused,
    InboundUnbound,
    Unbound,
    check_provider_event_id,
    message_received,
    normalise,
    subject_key,
)
from awooop.security.redaction import redact_text

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BOT = "123456789"
GROUP = -1001234567
EDITORS = -1009876543
CHANNEL = -1005555555
ADA: dict[str, Any] = {"id": 1111111, "is_bot": False, "first_name": "Ada", "language_code": "en"}
DEMO_BOT: dict[str, Any] = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Demo",
    "username": "demo_bot",
}
UPDATE: dict[str, Any] = {
    "update_id": 10000,
    "message": {
        "message_id": 1365,
        "from": ADA,
        "chat": {"id": GROUP, "type": "supergroup", "title": "ops"},
        "date": 1441645532,
        "text": "status of prod?",
    },
}
RECEIVED = dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
HELPDESK = "ops-telegram@2:0123456789ab"
EDITORS_REF = "editors-telegram@1:0123456789ab"
NEWS_REF = "news-telegram@1:0123456789ab"


class _Bindings:
    """Bot 123456789's chats: the ops group to acme's `helpdesk` (no edits), the editors'
    group to acme's `editor` (edits as messages), a channel to acme's `news`, chat -42
    to project globex. Nothing else is bound."""

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound:
        found = {
            str(GROUP): Binding("acme", "helpdesk", HELPDESK),
            str(EDITORS): Binding("acme", "editor", EDITORS_REF, accepts_edits=True),
            str(CHANNEL): Binding("acme", "news", NEWS_REF),
            "-42": Binding("globex", "sales", "globex-telegram@1:0123456789ab"),
        }
        if bot_id == BOT and chat_id in found:
            return found[chat_id]
        return Unbound("no active channel_binding")

    def slack(self, team_id: str, app_id: str, channel_id: str) -> Binding | Unbound:
        return Unbound("no active channel_binding")


BINDINGS = _Bindings()


def _record(payload: dict[str, Any] | None = None, **changes: Any) -> InboundRecord:
    fields: dict[str, Any] = {
        "project_id": "acme",
        "channel_type": "telegram",
        "provider_event_id": f"{BOT}:10000",
        "received_at": "2025-03-01T13:00:00.250+01:00",
        "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        "payload": copy.deepcopy(UPDATE) if payload is None else payload,
    }
    fields.update(changes)
    return InboundRecord.model_validate(fields)


def _update(kind: str = "message", /, **changes: Any) -> dict[str, Any]:
    """The update with its message changed: a ``None`` value removes the field."""
    message = copy.deepcopy(UPDATE["message"]) | changes
    return {"update_id": 10000, kind: {k: v for k, v in message.items() if v is not None}}


def _payload(update: dict[str, Any]) -> Any:
    return normalise(_record(update), BINDINGS).payload


def _message(**changes: Any) -> MessageReceived:
    fields: dict[str, Any] = {
        "channel_type": "telegram",
        "provider_event_id": f"{BOT}:10000",
        "platform_subject_id": "acme:telegram:1111111",
        "chat_id": str(GROUP),
        "thread_id": None,
        "message_id": "1365",
        "text": "status of prod?",
        "display_text": "status of prod?",
        "attachments": (),
        "entities": (),
        "command": None,
        "edited": False,
        "received_at": RECEIVED,
        "agent_id": "helpdesk",
        "revisions": (HELPDESK,),
    }
    return MessageReceived(**fields | changes)


def _ignored(reason: str, **changes: Any) -> InboundIgnored:
    fields: dict[str, Any] = {
        "channel_type": "telegram",
        "provider_event_id": f"{BOT}:10000",
        "platform_subject_id": "acme:telegram:1111111",
        "chat_id": str(GROUP),
        "reason": reason,
        "display_text": "status of prod?",
        "received_at": RECEIVED,
    }
    return InboundIgnored(**fields | changes)


def _refusal(record: InboundRecord) -> str:
    with pytest.raises(InboundRefused) as caught:
        normalise(record, BINDINGS)
    return caught.value.reason


def test_a_text_message_becomes_a_message_for_the_bound_agent() -> None:
    event = normalise(_record(), BINDINGS)
    assert event.payload == _message()
    assert re.fullmatch(PLATFORM_SUBJECT_PATTERN, event.payload.platform_subject_id or "")
    assert (event.project_id, event.trace_id, event.starts_run) == ("acme", TRACE_ID, True)
    assert event.stream_id == "acme:telegram:123456789:10000"
    assert event.dedup_key == ("acme", "telegram", "123456789:10000")


def test_received_at_is_kept_as_the_same_instant_in_utc() -> None:
    received = normalise(_record(), BINDINGS).payload.received_at
    assert received == RECEIVED
    assert received.utcoffset() == dt.timedelta(0)


def test_no_traceparent_or_an_all_zero_trace_leaves_the_trace_to_ingress() -> None:
    assert normalise(_record(traceparent=None), BINDINGS).trace_id is None
    zero = f"00-{'0' * 32}-00f067aa0ba902b7-01"
    assert normalise(_record(traceparent=zero), BINDINGS).trace_id is None


def test_an_edit_is_ignored_naming_the_agent_that_takes_no_edits() -> None:
    update = _update("edited_message", text="status of prod??", edit_date=1441645600)
    event = normalise(_record(update), BINDINGS)
    assert event.payload == _ignored(
        "an edited message: agent 'helpdesk' does not take edits "
        "(its contract's edits is 'ignore')",
        display_text="status of prod??",
    )
    assert event.starts_run is False


def test_an_edit_is_a_message_marked_edited_when_the_agent_opted_in() -> None:
    chat = {"id": EDITORS, "type": "supergroup", "title": "editors"}
    update = _update("edited_message", chat=chat, text="status of prod??", edit_date=1441645600)
    assert _payload(update) == _message(
        chat_id=str(EDITORS),
        text="status of prod??",
        display_text="status of prod??",
        edited=True,
        agent_id="editor",
        revisions=(EDITORS_REF,),
    )


CHANNEL_CHAT = {"id": CHANNEL, "type": "channel", "title": "news", "username": "acme_news"}


def test_a_channel_post_is_a_message_of_the_channel_itself() -> None:
    update = _update("channel_post", sender_chat=CHANNEL_CHAT, chat=CHANNEL_CHAT, **{"from": None})
    assert _payload(update) == _message(
        platform_subject_id=f"acme:telegram:{CHANNEL}",
        chat_id=str(CHANNEL),
        agent_id="news",
        revisions=(NEWS_REF,),
    )


def test_an_edited_channel_post_is_ignored_when_its_agent_takes_no_edits() -> None:
    update = _update(
        "edited_channel_post", sender_chat=CHANNEL_CHAT, chat=CHANNEL_CHAT, **{"from": None}
    )
    assert _payload(update) == _ignored(
        "an edited message: agent 'news' does not take edits (its contract's edits is 'ignore')",
        platform_subject_id=f"acme:telegram:{CHANNEL}",
        chat_id=str(CHANNEL),
    )


def test_an_anonymous_admin_speaks_as_the_group_not_as_the_placeholder_bot() -> None:
    anonymous = {
        "id": 1087968824,
        "is_bot": True,
        "first_name": "Group",
        "username": "GroupAnonymousBot",
    }
    group = {"id": GROUP, "type": "supergroup", "title": "ops"}
    update = _update(sender_chat=group, **{"from": anonymous})
    assert _payload(update) == _message(platform_subject_id=f"acme:telegram:{GROUP}")


def test_a_bot_message_is_ignored() -> None:
    update = _update(**{"from": {"id": 222, "is_bot": True, "first_name": "Other"}})
    assert _payload(update) == _ignored(
        "a bot's message (from.is_bot): only people start runs",
        platform_subject_id="acme:telegram:222",
    )


CALLBACK: dict[str, Any] = {
    "update_id": 10000,
    "callback_query": {
        "id": "4382bfdwdsb323b2d9",
        "from": ADA,
        "message": {
            "message_id": 1366,
            "from": DEMO_BOT,
            "chat": {"id": GROUP, "type": "supergroup", "title": "ops"},
            "date": 1441645540,
            "text": "Restart payments?",
            "reply_markup": {
                "inline_keyboard": [[{"text": "Approve", "callback_data": "approve:7f3a"}]]
            },
        },
        "chat_instance": "-8839461729474728",
        "data": "approve:7f3a",
    },
}


def _button(**changes: Any) -> ButtonPressed:
    fields: dict[str, Any] = {
        "channel_type": "telegram",
        "provider_event_id": f"{BOT}:10000",
        "platform_subject_id": "acme:telegram:1111111",
        "chat_id": str(GROUP),
        "thread_id": None,
        "message_id": "1366",
        "value": "approve:7f3a",
        "callback_id": "4382bfdwdsb323b2d9",
        "received_at": RECEIVED,
        "agent_id": "helpdesk",
        "revisions": (HELPDESK,),
    }
    return ButtonPressed(**fields | changes)


def test_a_callback_query_is_a_button_press_on_the_message_that_carried_it() -> None:
    event = normalise(_record(copy.deepcopy(CALLBACK)), BINDINGS)
    assert event.payload == _button()
    assert event.starts_run is False


def test_a_callback_query_in_a_forum_topic_names_the_topic() -> None:
    update = copy.deepcopy(CALLBACK)
    update["callback_query"]["message"] |= {"message_thread_id": 17, "is_topic_message": True}
    assert _payload(update) == _button(thread_id="17")


def test_a_callback_query_without_message_or_data_is_ignored() -> None:
    no_message = copy.deepcopy(CALLBACK)
    del no_message["callback_query"]["message"]
    no_message["callback_query"]["inline_message_id"] = "AAAAAJ1"
    assert _payload(no_message) == _ignored(
        "a callback_query without its message (too old, or from an inline message): "
        "no chat to act in",
        chat_id=None,
        display_text="",
    )
    game = copy.deepcopy(CALLBACK)
    del game["callback_query"]["data"]
    game["callback_query"]["game_short_name"] = "lumberjack"
    assert _payload(game) == _ignored(
        "a callback_query without data (a game's button): no value to act on", display_text=""
    )


@pytest.mark.parametrize(
    ("kind", "body", "named"),
    [
        ("my_chat_member", {"chat": {"id": GROUP}, "from": ADA, "date": 1}, "my_chat_member"),
        ("poll", {"id": "5", "question": "lunch?", "options": []}, "poll"),
        ("inline_query", {"id": "9", "from": ADA, "query": "x", "offset": ""}, "inline_query"),
    ],
)
def test_other_kinds_of_update_are_ignored_naming_the_kind(
    kind: str, body: dict[str, Any], named: str
) -> None:
    event = normalise(_record({"update_id": 10000, kind: body}), BINDINGS)
    assert event.payload == _ignored(
        f"a telegram update of kind {named}: no agent acts on it",
        platform_subject_id=None,
        chat_id=None,
        display_text="",
    )


def test_an_update_with_only_its_id_is_ignored() -> None:
    assert _payload({"update_id": 10000}) == _ignored(
        "a telegram update with only its update_id: no agent acts on it",
        platform_subject_id=None,
        chat_id=None,
        display_text="",
    )


@pytest.mark.parametrize(
    ("service", "named"),
    [
        ({"new_chat_members": [ADA]}, "new_chat_members"),
        ({"pinned_message": UPDATE["message"]}, "pinned_message"),
        ({"left_chat_member": ADA}, "left_chat_member"),
        ({"location": {"latitude": 48.8, "longitude": 2.3}}, "location"),
    ],
)
def test_a_message_with_no_text_caption_or_attachment_is_ignored(
    service: dict[str, Any], named: str
) -> None:
    update = _update(text=None, **service)
    assert _payload(update) == _ignored(
        f"a message with no text, caption or attachment (it carries {named}): no agent acts on it",
        display_text="",
    )


PHOTO = [
    {"file_id": "AgAD-small", "file_unique_id": "s", "file_size": 1200, "width": 90, "height": 67},
    {
        "file_id": "AgAD-large",
        "file_unique_id": "l",
        "file_size": 98410,
        "width": 1280,
        "height": 960,
    },
    {
        "file_id": "AgAD-medium",
        "file_unique_id": "m",
        "file_size": 24000,
        "width": 320,
        "height": 240,
    },
]


def test_a_captioned_photo_keeps_its_caption_entities_and_its_largest_size() -> None:
    caption = "see #incident 👀 on prod"
    entities = [
        {"type": "hashtag", "offset": 4, "length": 9},
        {"type": "bold", "offset": 17, "length": 7},
    ]
    update = _update(text=None, photo=PHOTO, caption=caption, caption_entities=entities)
    assert _payload(update) == _message(
        text=caption,
        display_text=caption,
        attachments=(Attachment(kind="photo", file_id="AgAD-large", size_bytes=98410),),
        entities=(
            Entity(type="hashtag", offset=4, length=9, text="#incident"),
            Entity(type="bold", offset=16, length=7, text="on prod"),
        ),
    )


def test_a_sticker_is_a_message_with_no_text_and_its_emoji() -> None:
    sticker = {
        "file_id": "CAACAgIAAxk",
        "file_unique_id": "AgAD",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
        "set_name": "HotCherry",
        "file_size": 23812,
    }
    update = _update(text=None, sticker=sticker)
    assert _payload(update) == _message(
        text="",
        display_text="",
        attachments=(
            Attachment(kind="sticker", file_id="CAACAgIAAxk", size_bytes=23812, emoji="👍"),
        ),
    )


def test_a_document_names_its_file_type_and_size() -> None:
    document = {
        "file_id": "BQACAgIAAxk",
        "file_unique_id": "AgADx",
        "file_name": "payments-incident.log",
        "mime_type": "text/plain",
        "file_size": 48213,
    }
    update = _update(text=None, document=document, caption="logs")
    assert _payload(update) == _message(
        text="logs",
        display_text="logs",
        attachments=(
            Attachment(
                kind="document",
                file_id="BQACAgIAAxk",
                name="payments-incident.log",
                mime_type="text/plain",
                size_bytes=48213,
            ),
        ),
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "video": {
                    "file_id": "V1",
                    "file_unique_id": "v",
                    "width": 640,
                    "height": 360,
                    "duration": 12,
                    "file_name": "demo.mp4",
                    "mime_type": "video/mp4",
                    "file_size": 901234,
                }
            },
            Attachment(
                kind="video",
                file_id="V1",
                name="demo.mp4",
                mime_type="video/mp4",
                size_bytes=901234,
            ),
        ),
        (
            {
                "audio": {
                    "file_id": "A1",
                    "file_unique_id": "a",
                    "duration": 200,
                    "performer": "Band",
                    "title": "Song",
                    "file_name": "song.mp3",
                    "mime_type": "audio/mpeg",
                    "file_size": 3000000,
                }
            },
            Attachment(
                kind="audio",
                file_id="A1",
                name="song.mp3",
                mime_type="audio/mpeg",
                size_bytes=3000000,
            ),
        ),
        (
            {
                "voice": {
                    "file_id": "O1",
                    "file_unique_id": "o",
                    "duration": 3,
                    "mime_type": "audio/ogg",
                    "file_size": 8000,
                }
            },
            Attachment(kind="voice", file_id="O1", mime_type="audio/ogg", size_bytes=8000),
        ),
        (
            {
                "video_note": {
                    "file_id": "N1",
                    "file_unique_id": "n",
                    "length": 240,
                    "duration": 5,
                    "file_size": 50000,
                }
            },
            Attachment(kind="video_note", file_id="N1", size_bytes=50000),
        ),
        (
            {
                "animation": {
                    "file_id": "G1",
                    "file_unique_id": "g",
                    "width": 320,
                    "height": 240,
                    "duration": 2,
                    "file_name": "party.mp4",
                    "mime_type": "video/mp4",
                    "file_size": 70000,
                },
                "document": {
                    "file_id": "G1",
                    "file_unique_id": "g",
                    "file_name": "party.mp4",
                    "mime_type": "video/mp4",
                    "file_size": 70000,
                },
            },
            Attachment(
                kind="animation",
                file_id="G1",
                name="party.mp4",
                mime_type="video/mp4",
                size_bytes=70000,
            ),
        ),
    ],
)
def test_each_kind_of_media_is_one_attachment(fields: dict[str, Any], expected: Attachment) -> None:
    update = _update(text=None, **fields)
    assert _payload(update) == _message(text="", display_text="", attachments=(expected,))


def test_a_forum_topic_message_names_its_topic_and_a_plain_reply_does_not() -> None:
    topic = _update(message_thread_id=17, is_topic_message=True)
    assert _payload(topic) == _message(thread_id="17")
    reply = _update(
        message_thread_id=1300,
        reply_to_message={
            "message_id": 1300,
            "date": 1,
            "chat": {"id": GROUP, "type": "supergroup"},
        },
    )
    assert _payload(reply) == _message()


def test_a_command_addressed_to_the_bot_names_the_command_without_slash_or_bot() -> None:
    text = "/start@demo_bot now"
    update = _update(text=text, entities=[{"type": "bot_command", "offset": 0, "length": 15}])
    assert _payload(update) == _message(
        text=text,
        display_text=text,
        entities=(Entity(type="bot_command", offset=0, length=15, text="/start@demo_bot"),),
        command="start",
    )


def test_a_command_later_in_the_text_is_no_command_of_the_message() -> None:
    text = "please /start"
    update = _update(text=text, entities=[{"type": "bot_command", "offset": 7, "length": 6}])
    assert _payload(update) == _message(
        text=text,
        display_text=text,
        entities=(Entity(type="bot_command", offset=7, length=6, text="/start"),),
    )


def test_an_entity_after_an_emoji_is_moved_back_by_the_surrogate_pair() -> None:
    text = "👋🏽 hi @ada_l, see https://status.example.com"
    entities = [
        {"type": "mention", "offset": 8, "length": 6},
        {"type": "url", "offset": 20, "length": 26},
    ]
    update = _update(text=text, entities=entities)
    assert _payload(update) == _message(
        text=text,
        display_text=redact_text(text),
        entities=(
            Entity(type="mention", offset=6, length=6, text="@ada_l"),
            Entity(type="url", offset=18, length=26, text="https://status.example.com"),
        ),
    )


@pytest.mark.parametrize(
    "text",
    [
        "deploy 🚀🔥 done 👩‍💻",
        "部署状态如何？本番環境は大丈夫ですか",  # noqa: RUF001
        "مرحبا، هل الخادم يعمل؟",
        "שלום, האם השרת פועל?",
        "mixed עברית and English 𠜎",
    ],
)
def test_emoji_cjk_and_right_to_left_text_is_kept_exactly(text: str) -> None:
    payload = _payload(_update(text=text))
    assert payload == _message(text=text, display_text=text)


def test_a_message_of_4096_characters_is_kept_exactly() -> None:
    text = ("status of prod? ✅ " * 228)[:4096]
    assert len(text) == 4096
    payload = _payload(_update(text=text))
    assert payload == _message(text=text, display_text=redact_text(text))
    assert payload.text == text


def test_display_text_is_redacted_while_text_stays_as_sent() -> None:
    text = (
        "card 4111 1111 1111 1111, mail ada@example.com, "
        "key sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    )
    payload = _payload(_update(text=text))
    assert payload.text == text
    assert payload.display_text == redact_text(text)
    for secret in ("4111 1111 1111 1111", "ada@example.com", "4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"):
        assert secret not in payload.display_text
    assert payload.display_text.startswith("card ")


@pytest.mark.parametrize(
    ("provider_event_id", "expected"),
    [
        (
            "123456789:10001",
            "provider_event_id '123456789:10001' does not end in ':10000', the update's update_id",
        ),
        ("10000", "provider_event_id '10000' does not end in ':10000', the update's update_id"),
        (
            ":10000",
            "provider_event_id ':10000' is not '<bot_id>:<update_id>' with a numeric bot id",
        ),
        (
            "bot:10000",
            "provider_event_id 'bot:10000' is not '<bot_id>:<update_id>' with a numeric bot id",
        ),
        (
            "12:34:10000",
            "provider_event_id '12:34:10000' is not '<bot_id>:<update_id>' with a numeric bot id",
        ),
        (
            "١٢٣:10000",
            "provider_event_id '١٢٣:10000' is not '<bot_id>:<update_id>' with a numeric bot id",
        ),
        (
            "123456789:010000",
            "provider_event_id '123456789:010000' does not end in ':10000', the update's update_id",
        ),
    ],
)
def test_a_provider_event_id_that_does_not_describe_the_update_is_refused(
    provider_event_id: str, expected: str
) -> None:
    assert _refusal(_record(provider_event_id=provider_event_id)) == expected


@pytest.mark.parametrize("update_id", ["10000", True, None, 1.5, "missing"])
def test_an_update_without_a_numeric_update_id_is_refused(update_id: Any) -> None:
    update = copy.deepcopy(UPDATE)
    if update_id == "missing":
        del update["update_id"]
    else:
        update["update_id"] = update_id
    assert _refusal(_record(update)) == "telegram update has no integer update_id"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"from": None}, "telegram message has no integer from.id"),
        ({"from": {"id": "1111111", "is_bot": False}}, "telegram message has no integer from.id"),
        ({"chat": None}, "telegram message has no integer chat.id"),
        ({"chat": {"id": True, "type": "group"}}, "telegram message has no integer chat.id"),
        ({"chat": []}, "telegram message has no integer chat.id"),
        ({"message_id": None}, "telegram message has no integer message_id"),
        ({"message_id": "1365"}, "telegram message has no integer message_id"),
        ({"sender_chat": {"title": "ops"}}, "telegram message has no integer sender_chat.id"),
        ({"text": 42}, "telegram message.text is not a string"),
        (
            {"is_topic_message": True},
            "telegram message in a topic has no integer message_thread_id",
        ),
        (
            {"document": {"file_name": "x.log"}, "text": None},
            "attachments.0.file_id: Field required",
        ),
        ({"photo": [], "text": None}, "telegram message.photo is not a non-empty array of sizes"),
        (
            {"entities": [{"type": "bold", "offset": 10, "length": 9}]},
            "telegram message.entities[0] (offset 10, length 9)"
            " is no span of the text's 15 UTF-16 code units",
        ),
    ],
)
def test_a_message_with_a_missing_or_ill_typed_field_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    update = _update()
    for field, value in changes.items():
        if value is None:
            update["message"].pop(field, None)
        else:
            update["message"][field] = value
    assert _refusal(_record(update)) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda q: q.pop("id"), "telegram callback_query has no string id"),
        (lambda q: q.pop("from"), "telegram callback_query has no integer from.id"),
        (
            lambda q: q["message"].pop("chat"),
            "telegram callback_query.message has no integer chat.id",
        ),
        (
            lambda q: q["message"].pop("message_id"),
            "telegram callback_query.message has no integer message_id",
        ),
        (lambda q: q.update(data=7), "telegram callback_query.data is not a string"),
        (lambda q: q.update(message="1366"), "telegram callback_query.message is not an object"),
    ],
)
def test_a_callback_query_with_a_missing_or_ill_typed_field_is_refused(
    change: Any, reason: str
) -> None:
    update = copy.deepcopy(CALLBACK)
    change(update["callback_query"])
    assert _refusal(_record(update)) == reason


def test_an_update_of_two_kinds_or_a_kind_that_is_no_object_is_refused() -> None:
    both = copy.deepcopy(CALLBACK) | {"message": UPDATE["message"]}
    assert _refusal(_record(both)) == (
        "telegram update 10000 carries callback_query, message: an update is of one kind"
    )
    assert _refusal(_record({"update_id": 10000, "message": "hi"})) == (
        "telegram update.message is not an object"
    )


def test_a_provider_event_id_too_long_for_a_stream_id_is_refused() -> None:
    too_long = "1" * 250 + ":10000"
    assert _refusal(_record(provider_event_id=too_long)) == (
        "provider_event_id of 256 characters is too long for a 256-character stream id"
    )


def test_the_envelope_starts_the_inbound_stream_and_correlates_to_itself() -> None:
    message = normalise(_record(), BINDINGS)
    event_id = new_event_id()
    at = dt.datetime(2025, 3, 1, 12, 0, 1, tzinfo=dt.UTC)
    envelope = message_received(message, event_id=event_id, occurred_at=at, trace_id=TRACE_ID)
    assert envelope.event_id == event_id
    assert envelope.event_type == "ingress.message_received"
    assert envelope.schema_version == 3
    assert envelope.occurred_at == at
    assert envelope.project_id == "acme"
    assert (envelope.stream_type, envelope.stream_id, envelope.stream_seq) == (
        "inbound",
        "acme:telegram:123456789:10000",
        1,
    )
    assert envelope.correlation_id == str(event_id)
    assert envelope.causation_id is None
    assert envelope.trace_id == TRACE_ID
    assert (envelope.actor, envelope.producer) == ("service:ingress", "ingress")
    assert envelope.payload == message.payload
    assert subject_key(message) == "acme:acme:telegram:1111111"


@given(
    bot_id=st.integers(min_value=1, max_value=2**63),
    update_id=st.integers(min_value=0, max_value=2**31),
    other=st.integers(min_value=0, max_value=2**31),
)
def test_only_the_update_own_id_after_a_numeric_bot_id_is_accepted(
    bot_id: int, update_id: int, other: int
) -> None:
    check_provider_event_id(f"{bot_id}:{update_id}", update_id)
    if other != update_id:
        with pytest.raises(InboundRefused):
            check_provider_event_id(f"{bot_id}:{other}", update_id)


@given(user_id=st.integers(min_value=1, max_value=2**53), text=st.text(min_size=1))
def test_every_sender_becomes_a_valid_subject_and_any_text_is_kept(user_id: int, text: str) -> None:
    update = _update(text=text, **{"from": {"id": user_id, "is_bot": False, "first_name": "A"}})
    payload = _payload(update)
    assert payload.platform_subject_id == f"acme:telegram:{user_id}"
    assert re.fullmatch(PLATFORM_SUBJECT_PATTERN, payload.platform_subject_id)
    assert payload.text == text
    assert payload.display_text == redact_text(text)


def test_a_chat_no_binding_covers_is_refused_as_unbound() -> None:
    update = _update(chat={"id": -7, "type": "group"})
    with pytest.raises(InboundUnbound) as caught:
        normalise(_record(update), BINDINGS)
    assert caught.value.code == "E-INBOUND-UNBOUND"
    assert caught.value.reason == "telegram bot 123456789 chat -7: no active channel_binding"


def test_a_bot_message_or_a_button_in_an_unbound_chat_is_refused_before_anything_else() -> None:
    bot = _update(chat={"id": -7, "type": "group"}, **{"from": DEMO_BOT})
    button = copy.deepcopy(CALLBACK)
    button["callback_query"]["message"]["chat"] = {"id": -7, "type": "group"}
    for update in (bot, button):
        with pytest.raises(InboundUnbound) as caught:
            normalise(_record(update), BINDINGS)
        assert caught.value.reason == "telegram bot 123456789 chat -7: no active channel_binding"


def test_a_chat_bound_to_another_project_is_refused_without_naming_that_project() -> None:
    update = _update(chat={"id": -42, "type": "group"})
    with pytest.raises(InboundUnbound) as caught:
        normalise(_record(update), BINDINGS)
    assert (
        caught.value.reason
        == "telegram bot 123456789 chat -42 is bound to another project than 'acme'"
    )

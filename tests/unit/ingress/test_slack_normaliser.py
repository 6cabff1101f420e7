"""The Slack normaliser: given an Events API callback or a ``block_actions`` interaction
as Slack sends it, then one event (a message, a button press, an ignored record) or a
refusal with its reason."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from awooop.contracts.events.payloads.ingress import (
    Attachment,
    ButtonPressed,
    InboundIgnored,
    MessageReceived,
)
from awooop.contracts.records.inbound import InboundRecord, slack_interaction_id
from awooop.ingress.domain import Binding, InboundRefused, InboundUnbound, Unbound, normalise
from awooop.security.redaction import redact_text

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
RECEIVED = dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
EVENT_ID = "Ev08MFMKH6"
APP_BOT = "U0APPBOT"
ADA = "U0ADA"
HELPDESK = "ops-slack@2:0123456789ab"
EDITOR = "editors-slack@1:0123456789ab"


class _Bindings:
    """App A0001 in team T0001: #ops (C0OPS), a private channel (G0PRIV), a group DM
    (C0MPIM) and Ada's DM (D0ADA) to acme's `helpdesk`; #editors (C0EDIT) to acme's
    `editor`, which takes edits; C0GLOBEX to project globex. Nothing else is bound."""

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound:
        return Unbound("no active channel_binding")

    def slack(self, team_id: str, app_id: str, channel_id: str) -> Binding | Unbound:
        if (team_id, app_id) != ("T0001", "A0001"):
            return Unbound("no active channel_binding")
        if channel_id in ("C0OPS", "G0PRIV", "C0MPIM", "D0ADA"):
            return Binding("acme", "helpdesk", HELPDESK)
        if channel_id == "C0EDIT":
            return Binding("acme", "editor", EDITOR, accepts_edits=True)
        if channel_id == "C0GLOBEX":
            return Binding("globex", "sales", "globex-slack@1:0123456789ab")
        return Unbound("no active channel_binding")


BINDINGS = _Bindings()

MESSAGE: dict[str, Any] = {
    "type": "message",
    "channel": "C0OPS",
    "user": ADA,
    "text": "is prod ok?",
    "ts": "1355517523.000005",
    "event_ts": "1355517523.000005",
    "channel_type": "channel",
    "team": "T0001",
    "client_msg_id": "5c2d1e3f-0000-4000-8000-000000000001",
}


def _callback(inner: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An ``event_callback`` envelope around `inner`; a ``None`` change removes a field."""
    envelope = {
        "token": "XXYYZZ",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": copy.deepcopy(inner),
        "type": "event_callback",
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0001",
                "user_id": APP_BOT,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "event_id": EVENT_ID,
        "event_time": 1355517523,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    } | changes
    return {key: value for key, value in envelope.items() if value is not None}


def _event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(MESSAGE) | changes
    return {key: value for key, value in event.items() if value is not None}


def _record(payload: dict[str, Any], **changes: Any) -> InboundRecord:
    fields: dict[str, Any] = {
        "project_id": "acme",
        "channel_type": "slack",
        "provider_event_id": EVENT_ID,
        "received_at": "2025-03-01T13:00:00.250+01:00",
        "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        "payload": payload,
    }
    return InboundRecord.model_validate(fields | changes)


def _payload(payload: dict[str, Any]) -> Any:
    return normalise(_record(payload), BINDINGS).payload


def _message(**changes: Any) -> MessageReceived:
    fields: dict[str, Any] = {
        "channel_type": "slack",
        "provider_event_id": EVENT_ID,
        "platform_subject_id": f"acme:slack:{ADA}",
        "chat_id": "C0OPS",
        "thread_id": None,
        "message_id": "1355517523.000005",
        "text": "is prod ok?",
        "display_text": "is prod ok?",
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
        "channel_type": "slack",
        "provider_event_id": EVENT_ID,
        "platform_subject_id": f"acme:slack:{ADA}",
        "chat_id": "C0OPS",
        "reason": reason,
        "display_text": "is prod ok?",
        "received_at": RECEIVED,
    }
    return InboundIgnored(**fields | changes)


def _refusal(record: InboundRecord) -> str:
    with pytest.raises(InboundRefused) as caught:
        normalise(record, BINDINGS)
    return caught.value.reason


def test_a_direct_message_becomes_a_message_for_the_bound_agent() -> None:
    event = normalise(_record(_callback(_event(channel="D0ADA", channel_type="im"))), BINDINGS)
    assert event.payload == _message(chat_id="D0ADA")
    assert (event.project_id, event.trace_id, event.starts_run) == ("acme", TRACE_ID, True)
    assert event.stream_id == f"acme:slack:{EVENT_ID}"


@pytest.mark.parametrize(
    ("channel", "channel_type"), [("C0OPS", "channel"), ("G0PRIV", "group"), ("C0MPIM", "mpim")]
)
def test_a_channel_private_channel_or_group_dm_message_is_a_message(
    channel: str, channel_type: str
) -> None:
    payload = _payload(_callback(_event(channel=channel, channel_type=channel_type)))
    assert payload == _message(chat_id=channel)


def test_a_thread_reply_names_its_thread_and_a_parent_is_in_none() -> None:
    reply = _event(ts="1355517600.000010", thread_ts="1355517523.000005", parent_user_id="U0BOB")
    assert _payload(_callback(reply)) == _message(
        thread_id="1355517523.000005", message_id="1355517600.000010"
    )
    parent = _event(thread_ts="1355517523.000005", reply_count=3)
    assert _payload(_callback(parent)) == _message()


def test_a_thread_reply_also_sent_to_the_channel_is_a_message_in_its_thread() -> None:
    broadcast = _event(
        subtype="thread_broadcast", ts="1355517600.000010", thread_ts="1355517523.000005"
    )
    assert _payload(_callback(broadcast)) == _message(
        thread_id="1355517523.000005", message_id="1355517600.000010"
    )


def _changed(channel: str = "C0OPS", **message_changes: Any) -> dict[str, Any]:
    message = {
        "type": "message",
        "user": ADA,
        "text": "is prod ok now?",
        "ts": "1355517523.000005",
        "edited": {"user": ADA, "ts": "1355517590.000000"},
        "client_msg_id": "5c2d1e3f-0000-4000-8000-000000000001",
    } | message_changes
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "ts": "1355517590.000001",
        "event_ts": "1355517590.000001",
        "channel_type": "channel",
        "message": {key: value for key, value in message.items() if value is not None},
        "previous_message": {
            "type": "message",
            "user": ADA,
            "text": "is prod ok?",
            "ts": "1355517523.000005",
        },
    }


def test_an_edit_is_ignored_naming_the_agent_that_takes_no_edits() -> None:
    assert _payload(_callback(_changed())) == _ignored(
        "an edited message: agent 'helpdesk' does not take edits "
        "(its contract's edits is 'ignore')",
        display_text="is prod ok now?",
    )


def test_an_edit_is_a_message_marked_edited_when_the_agent_opted_in() -> None:
    assert _payload(_callback(_changed("C0EDIT"))) == _message(
        chat_id="C0EDIT",
        text="is prod ok now?",
        display_text="is prod ok now?",
        edited=True,
        agent_id="editor",
        revisions=(EDITOR,),
    )


def test_an_edit_in_a_thread_keeps_its_thread() -> None:
    edit = _changed("C0EDIT", ts="1355517600.000010", thread_ts="1355517523.000005")
    assert _payload(_callback(edit)) == _message(
        chat_id="C0EDIT",
        thread_id="1355517523.000005",
        message_id="1355517600.000010",
        text="is prod ok now?",
        display_text="is prod ok now?",
        edited=True,
        agent_id="editor",
        revisions=(EDITOR,),
    )


def test_a_message_changed_that_is_no_edit_is_ignored() -> None:
    unfurled = _changed("C0EDIT", edited=None, attachments=[{"from_url": "https://example.com"}])
    assert _payload(_callback(unfurled)) == _ignored(
        "a message_changed that is no edit (a link unfurled, or a thread's replies counted): "
        "nothing was rewritten",
        chat_id="C0EDIT",
        display_text="",
    )


def test_an_edit_of_a_bot_message_is_ignored_as_a_bot_message() -> None:
    edit = _changed("C0EDIT", user=None, bot_id="B0OPSBOT", text="deploying")
    assert _payload(_callback(edit)) == _ignored(
        "a bot's message (bot_id 'B0OPSBOT'): only people start runs",
        platform_subject_id=None,
        chat_id="C0EDIT",
        display_text="deploying",
    )


def test_a_bot_message_is_ignored() -> None:
    bot_message = _event(
        subtype="bot_message", user=None, bot_id="B0OPSBOT", username="ops-bot", text="deployed"
    )
    assert _payload(_callback(bot_message)) == _ignored(
        "a bot's message (bot_id 'B0OPSBOT'): only people start runs",
        platform_subject_id=None,
        display_text="deployed",
    )
    legacy = _event(subtype="bot_message", user=None, username="ops-hook", text="deployed")
    assert _payload(_callback(legacy)) == _ignored(
        "a bot's message (subtype 'bot_message'): only people start runs",
        platform_subject_id=None,
        display_text="deployed",
    )


def test_an_app_message_with_a_user_is_ignored_as_a_bot_message() -> None:
    reply = _event(user=APP_BOT, bot_id="B0APP", app_id="A0001", text="Prod is fine.")
    assert _payload(_callback(reply)) == _ignored(
        "a bot's message (bot_id 'B0APP'): only people start runs",
        platform_subject_id=f"acme:slack:{APP_BOT}",
        display_text="Prod is fine.",
    )


def test_a_file_share_is_a_message_with_file_attachments() -> None:
    files = [
        {
            "id": "F0LOGS",
            "created": 1355517520,
            "name": "payments.log",
            "title": "payments.log",
            "mimetype": "text/plain",
            "filetype": "text",
            "user": ADA,
            "size": 48213,
            "url_private": "https://files.slack.com/files-pri/T0001-F0LOGS/payments.log",
        },
        {"id": "F0SHOT", "name": "graph.png", "mimetype": "image/png", "size": 120000},
    ]
    share = _event(subtype="file_share", text="logs attached", files=files, upload=False)
    assert _payload(_callback(share)) == _message(
        text="logs attached",
        display_text="logs attached",
        attachments=(
            Attachment(
                kind="file",
                file_id="F0LOGS",
                name="payments.log",
                mime_type="text/plain",
                size_bytes=48213,
            ),
            Attachment(
                kind="file",
                file_id="F0SHOT",
                name="graph.png",
                mime_type="image/png",
                size_bytes=120000,
            ),
        ),
    )


def test_a_file_share_without_text_is_a_message_and_an_empty_message_is_ignored() -> None:
    share = _event(subtype="file_share", text="", files=[{"id": "F0LOGS"}])
    assert _payload(_callback(share)) == _message(
        text="", display_text="", attachments=(Attachment(kind="file", file_id="F0LOGS"),)
    )
    assert _payload(_callback(_event(text=""))) == _ignored(
        "a message with no text or file: no agent acts on it", display_text=""
    )


MENTION: dict[str, Any] = {
    "type": "app_mention",
    "user": ADA,
    "text": f"<@{APP_BOT}> is prod ok?",
    "ts": "1355517523.000005",
    "channel": "C0OPS",
    "event_ts": "1355517523.000005",
    "team": "T0001",
}


def test_an_app_mention_is_a_message_with_its_mention_kept() -> None:
    text = f"<@{APP_BOT}> is prod ok?"
    assert _payload(_callback(MENTION)) == _message(text=text, display_text=text)
    in_thread = MENTION | {"ts": "1355517600.000010", "thread_ts": "1355517523.000005"}
    assert _payload(_callback(in_thread)) == _message(
        text=text, display_text=text, thread_id="1355517523.000005", message_id="1355517600.000010"
    )


@pytest.mark.parametrize("mention", [f"<@{APP_BOT}>", f"<@{APP_BOT}|demo>"])
def test_the_message_event_of_a_mention_is_ignored_for_its_app_mention(mention: str) -> None:
    text = f"{mention} is prod ok?"
    payload = _callback(_event(text=text), event_id="Ev08MFMKH7")
    ignored = normalise(_record(payload, provider_event_id="Ev08MFMKH7"), BINDINGS).payload
    assert ignored == _ignored(
        f"a message mentioning the app's bot user <@{APP_BOT}>: "
        "its app_mention event starts the run",
        provider_event_id="Ev08MFMKH7",
        display_text=text,
    )
    started = _payload(_callback(MENTION | {"text": text}))
    assert started == _message(text=text, display_text=text)


def test_a_mention_in_a_direct_message_or_of_someone_else_is_a_message() -> None:
    text = f"<@{APP_BOT}> is prod ok?"
    direct = _event(channel="D0ADA", channel_type="im", text=text)
    assert _payload(_callback(direct)) == _message(chat_id="D0ADA", text=text, display_text=text)
    other = "<@U0BOB> is prod ok?"
    assert _payload(_callback(_event(text=other))) == _message(text=other, display_text=other)


@pytest.mark.parametrize(
    ("subtype", "extra"),
    [
        ("message_deleted", {"deleted_ts": "1355517523.000005", "hidden": True}),
        ("channel_join", {"text": f"<@{ADA}> has joined the channel"}),
        ("channel_topic", {"topic": "incidents", "text": "set the topic"}),
        ("message_replied", {"hidden": True}),
    ],
)
def test_other_message_subtypes_are_ignored_naming_the_subtype(
    subtype: str, extra: dict[str, Any]
) -> None:
    event = _event(subtype=subtype, **extra)
    assert _payload(_callback(event)) == _ignored(
        f"a slack message of subtype {subtype!r}: no agent acts on it",
        platform_subject_id=None,
        chat_id=None,
        display_text="",
    )


@pytest.mark.parametrize(
    "event_type", ["reaction_added", "member_joined_channel", "app_home_opened"]
)
def test_other_event_types_are_ignored_naming_the_type(event_type: str) -> None:
    event = {"type": event_type, "user": ADA, "channel": "C0OPS", "event_ts": "1355517523.000005"}
    assert _payload(_callback(event)) == _ignored(
        f"a slack event of type {event_type!r}: no agent acts on it",
        platform_subject_id=None,
        chat_id=None,
        display_text="",
    )


@pytest.mark.parametrize(
    "text",
    [
        "if a &lt; b &amp;&amp; c &gt; d, page <@U0BOB> in <#C0OPS|ops> <!here>",
        "deploy 🚀🔥 done 👩‍💻",
        "部署状态如何？本番環境は大丈夫ですか",  # noqa: RUF001
        "مرحبا، هل الخادم يعمل؟",
        "שלום, האם השרת פועל?",
    ],
)
def test_text_is_kept_exactly_as_slack_sent_it(text: str) -> None:
    assert _payload(_callback(_event(text=text))) == _message(text=text, display_text=text)


def test_a_message_of_4096_characters_is_kept_exactly() -> None:
    text = ("is prod ok? ✅ " * 300)[:4096]
    payload = _payload(_callback(_event(text=text)))
    assert payload == _message(text=text, display_text=redact_text(text))
    assert len(payload.text) == 4096


def test_display_text_is_redacted_while_text_stays_as_sent() -> None:
    text = (
        "card 4111 1111 1111 1111, mail <mailto:ada@example.com|ada@example.com>, "
        "key sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    )
    payload = _payload(_callback(_event(text=text)))
    assert payload.text == text
    assert payload.display_text == redact_text(text)
    for secret in ("4111 1111 1111 1111", "ada@example.com", "4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"):
        assert secret not in payload.display_text


BLOCK_ACTIONS: dict[str, Any] = {
    "type": "block_actions",
    "user": {"id": ADA, "username": "ada", "name": "ada", "team_id": "T0001"},
    "api_app_id": "A0001",
    "token": "9s8d9as89d8as9d8as989",
    "container": {
        "type": "message",
        "message_ts": "1548261231.000200",
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    },
    "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
    "team": {"id": "T0001", "domain": "acme"},
    "enterprise": None,
    "is_enterprise_install": False,
    "channel": {"id": "C0OPS", "name": "ops"},
    "message": {
        "type": "message",
        "bot_id": "B0APP",
        "user": APP_BOT,
        "text": "Restart payments?",
        "ts": "1548261231.000200",
        "blocks": [],
    },
    "response_url": "https://hooks.slack.com/actions/T0001/1234567890/abcdef",
    "actions": [
        {
            "action_id": "approve",
            "block_id": "approval",
            "text": {"type": "plain_text", "text": "Approve", "emoji": True},
            "value": "approve:7f3a",
            "style": "primary",
            "type": "button",
            "action_ts": "1548426417.840180",
        }
    ],
}
BLOCK_ACTIONS_ID = "block_actions:T0001:U0ADA:1548426417.840180"


def _press(payload: dict[str, Any]) -> Any:
    return normalise(_record(payload, provider_event_id=BLOCK_ACTIONS_ID), BINDINGS).payload


def _button(**changes: Any) -> ButtonPressed:
    fields: dict[str, Any] = {
        "channel_type": "slack",
        "provider_event_id": BLOCK_ACTIONS_ID,
        "platform_subject_id": f"acme:slack:{ADA}",
        "chat_id": "C0OPS",
        "thread_id": None,
        "message_id": "1548261231.000200",
        "value": "approve:7f3a",
        "callback_id": None,
        "received_at": RECEIVED,
        "agent_id": "helpdesk",
        "revisions": (HELPDESK,),
    }
    return ButtonPressed(**fields | changes)


def test_a_block_action_is_a_button_press_on_its_message() -> None:
    assert slack_interaction_id(BLOCK_ACTIONS) == BLOCK_ACTIONS_ID
    event = normalise(
        _record(copy.deepcopy(BLOCK_ACTIONS), provider_event_id=BLOCK_ACTIONS_ID), BINDINGS
    )
    assert event.payload == _button()
    assert event.starts_run is False


def test_a_block_action_in_a_thread_names_the_thread() -> None:
    payload = copy.deepcopy(BLOCK_ACTIONS)
    payload["container"]["thread_ts"] = "1548261000.000100"
    payload["message"]["thread_ts"] = "1548261000.000100"
    assert _press(payload) == _button(thread_id="1548261000.000100")


def test_a_select_menu_gives_its_selected_option_and_the_container_its_chat() -> None:
    payload = copy.deepcopy(BLOCK_ACTIONS)
    del payload["channel"], payload["message"]
    payload["actions"][0] = {
        "type": "static_select",
        "action_id": "restart",
        "block_id": "choice",
        "selected_option": {"text": {"type": "plain_text", "text": "Now"}, "value": "restart:now"},
        "action_ts": "1548426417.840180",
    }
    assert _press(payload) == _button(value="restart:now")


def test_a_block_action_outside_a_channel_or_without_value_is_ignored() -> None:
    view = copy.deepcopy(BLOCK_ACTIONS)
    del view["channel"], view["message"]
    view["container"] = {"type": "view", "view_id": "V0123"}
    ignored = _press(view)
    assert ignored == InboundIgnored(
        channel_type="slack",
        provider_event_id=BLOCK_ACTIONS_ID,
        platform_subject_id=f"acme:slack:{ADA}",
        chat_id=None,
        reason="a block_actions outside a channel (in a view or the app home): no chat to act in",
        display_text="",
        received_at=RECEIVED,
    )
    picker = copy.deepcopy(BLOCK_ACTIONS)
    picker["actions"][0] = {
        "type": "datepicker",
        "selected_date": "2025-03-02",
        "action_ts": "1548426417.840180",
    }
    assert _press(picker) == InboundIgnored(
        channel_type="slack",
        provider_event_id=BLOCK_ACTIONS_ID,
        platform_subject_id=f"acme:slack:{ADA}",
        chat_id="C0OPS",
        reason="a block_actions whose action carries no value: nothing to act on",
        display_text="",
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    "kind", ["view_submission", "shortcut", "message_action", "url_verification"]
)
def test_other_payload_types_are_ignored_naming_the_type(kind: str) -> None:
    payload = {"type": kind, "team": {"id": "T0001"}, "user": {"id": ADA}}
    assert _payload(payload) == _ignored(
        f"a slack payload of type {kind!r}: no agent acts on it",
        platform_subject_id=None,
        chat_id=None,
        display_text="",
    )


def test_a_provider_event_id_other_than_the_callback_event_id_is_refused() -> None:
    record = _record(_callback(_event()), provider_event_id="Ev08MFMKH7")
    assert _refusal(record) == (
        "provider_event_id 'Ev08MFMKH7' is not the event callback's event_id 'Ev08MFMKH6'"
    )


def test_a_block_action_named_otherwise_than_by_its_interaction_id_is_refused() -> None:
    record = _record(copy.deepcopy(BLOCK_ACTIONS), provider_event_id="block_actions:T0001:U0ADA:1")
    assert _refusal(record) == (
        "provider_event_id 'block_actions:T0001:U0ADA:1' is not "
        f"'{BLOCK_ACTIONS_ID}', the id of this block_actions interaction"
    )
    unnamed = copy.deepcopy(BLOCK_ACTIONS)
    del unnamed["actions"][0]["action_ts"]
    assert _refusal(_record(unnamed, provider_event_id=BLOCK_ACTIONS_ID)) == (
        "slack block_actions has no string team.id, user.id and actions[0].action_ts to be named by"
    )


@pytest.mark.parametrize(
    ("envelope", "event", "reason"),
    [
        ({"event_id": None}, {}, "slack event_callback has no string event_id"),
        ({"event": None}, {}, "slack event_callback has no event object"),
        ({"team_id": None}, {}, "slack event_callback has no string team_id"),
        ({"api_app_id": None}, {}, "slack event_callback has no string api_app_id"),
        ({}, {"type": None}, "slack event_callback.event has no string type"),
        ({}, {"user": None}, "slack message event has no string user"),
        ({}, {"user": 42}, "slack message event has no string user"),
        ({}, {"channel": None}, "slack message event has no string channel"),
        ({}, {"ts": None}, "slack message event has no string ts"),
        ({}, {"text": ["hi"]}, "slack message event.text is not a string"),
        ({}, {"thread_ts": 1355517523}, "slack message event.thread_ts is not a string"),
        (
            {},
            {"subtype": "file_share", "files": [{"name": "x.log"}]},
            "attachments.0.file_id: Field required",
        ),
        (
            {},
            {"subtype": "file_share", "files": "F0LOGS"},
            "slack message event.files is not an array",
        ),
    ],
)
def test_a_callback_with_a_missing_or_ill_typed_field_is_refused(
    envelope: dict[str, Any], event: dict[str, Any], reason: str
) -> None:
    payload = _callback(_event(**event), **envelope)
    assert _refusal(_record(payload)) == reason


def test_a_payload_without_type_or_a_block_action_without_app_is_refused() -> None:
    assert _refusal(_record({"event_id": EVENT_ID})) == "slack payload has no string type"
    no_app = copy.deepcopy(BLOCK_ACTIONS)
    del no_app["api_app_id"]
    assert _refusal(_record(no_app, provider_event_id=BLOCK_ACTIONS_ID)) == (
        "slack block_actions has no string api_app_id"
    )


def test_an_unbound_channel_is_refused_as_unbound_whatever_the_message() -> None:
    for event in (_event(channel="C0NOPE"), _event(channel="C0NOPE", bot_id="B0OPSBOT")):
        with pytest.raises(InboundUnbound) as caught:
            normalise(_record(_callback(event)), BINDINGS)
        assert (
            caught.value.reason
            == "slack team T0001 app A0001 channel C0NOPE: no active channel_binding"
        )
    with pytest.raises(InboundUnbound) as caught:
        normalise(_record(_callback(_event(channel="C0GLOBEX"))), BINDINGS)
    assert caught.value.reason == (
        "slack team T0001 app A0001 channel C0GLOBEX is bound to another project than 'acme'"
    )

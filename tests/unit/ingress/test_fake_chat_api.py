"""The fake chat APIs: the providers' answer shapes, refusals, the record and the fault queue."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from awooop.ingress import fake_chat_api
from awooop.ingress.fake_chat_api import create_app, main
from awooop.ingress.fake_chat_state import FakeChatState, fingerprint

pytestmark = pytest.mark.unit

TG_TOKEN = "123456:ABC-secret-telegram"
SLACK_TOKEN = "xoxb-secret-slack"
NOW = 1_700_000_000.0
SEND = f"/bot{TG_TOKEN}/sendMessage"
EDIT = f"/bot{TG_TOKEN}/editMessageText"
SLACK_AUTH = {"Authorization": f"Bearer {SLACK_TOKEN}"}
KEYBOARD = {"inline_keyboard": [[{"text": "Approve", "callback_data": "a:1"}]]}
BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "deploy?"}},
    {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Yes"}, "value": "y"},
            {"type": "button", "text": {"type": "plain_text", "text": "No"}, "action_id": "n"},
        ],
    },
]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[httpx.AsyncClient, FakeChatState]]:
    app, state = create_app({TG_TOKEN: "support-bot"}, {SLACK_TOKEN: "ops-app"}, clock=lambda: NOW)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield client, state


async def received(client: httpx.AsyncClient, **query: str) -> list[dict[str, Any]]:
    answer = await client.get("/_fake/received", params=query)
    assert answer.status_code == 200
    calls: list[dict[str, Any]] = answer.json()
    return calls


async def faults(client: httpx.AsyncClient, *items: dict[str, Any]) -> None:
    answer = await client.post("/_fake/faults", json=list(items))
    assert answer.status_code == 200, answer.text


async def test_send_message_answers_like_telegram(fake: Any) -> None:
    client, _state = fake
    body = {
        "chat_id": -1001234567,
        "text": "<b>deploy</b>?",
        "parse_mode": "HTML",
        "message_thread_id": 7,
        "reply_parameters": {"message_id": 3},
        "reply_markup": KEYBOARD,
    }
    answer = await client.post(SEND, json=body)
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "result": {
            "message_id": 1,
            "chat": {"id": -1001234567, "type": "supergroup"},
            "date": int(NOW),
            "message_thread_id": 7,
            "is_topic_message": True,
            "reply_to_message": {
                "message_id": 3,
                "chat": {"id": -1001234567, "type": "supergroup"},
            },
            "text": "<b>deploy</b>?",
            "reply_markup": KEYBOARD,
        },
    }
    [call] = await received(client)
    assert call == {
        "seq": 1,
        "provider": "telegram",
        "method": "sendMessage",
        "bot": "support-bot",
        "status": 200,
        "ok": True,
        "error": None,
        "chat": "-1001234567",
        "text": "<b>deploy</b>?",
        "thread": 7,
        "reply_to": 3,
        "buttons": [[{"text": "Approve", "data": "a:1"}]],
        "parse_mode": "HTML",
        "callback_query_id": None,
        "message_id": 1,
        "fault": False,
        "delay_seconds": 0.0,
    }


async def test_message_ids_increase_per_chat(fake: Any) -> None:
    client, _state = fake
    ids = []
    for chat in (5, 5, 6, 5):
        answer = await client.post(SEND, json={"chat_id": chat, "text": "hi"})
        ids.append(answer.json()["result"]["message_id"])
    assert ids == [1, 2, 1, 3]


async def test_send_message_takes_a_form_encoded_body(fake: Any) -> None:
    client, _state = fake
    form = {
        "chat_id": "42",
        "text": "from a form",
        "reply_to_message_id": "9",
        "reply_markup": json.dumps(KEYBOARD),
    }
    answer = await client.post(SEND, data=form)
    result = answer.json()["result"]
    assert (result["chat"], result["text"]) == ({"id": 42, "type": "private"}, "from a form")
    assert result["reply_to_message"]["message_id"] == 9
    [call] = await received(client)
    assert (call["reply_to"], call["buttons"]) == (9, [[{"text": "Approve", "data": "a:1"}]])


async def test_telegram_method_names_ignore_case(fake: Any) -> None:
    client, _state = fake
    answer = await client.post(f"/bot{TG_TOKEN}/SENDMESSAGE", json={"chat_id": 1, "text": "x"})
    assert answer.json()["ok"] is True
    assert (await received(client))[0]["method"] == "sendMessage"


async def test_edit_message_text_changes_a_sent_message(fake: Any) -> None:
    client, state = fake
    await client.post(SEND, json={"chat_id": 5, "text": "pending", "reply_markup": KEYBOARD})
    answer = await client.post(EDIT, data={"chat_id": "5", "message_id": "1", "text": "approved"})
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert (result["message_id"], result["text"], result["edit_date"]) == (1, "approved", NOW)
    assert "reply_markup" not in result  # an edit without a keyboard removes it
    assert state.find("telegram", "5", 1).text == "approved"
    calls = await received(client)
    assert [(c["method"], c["message_id"], c["text"]) for c in calls] == [
        ("sendMessage", 1, "pending"),
        ("editMessageText", 1, "approved"),
    ]


async def test_edit_refusals_are_telegrams(fake: Any) -> None:
    client, _state = fake
    await client.post(SEND, json={"chat_id": 5, "text": "same"})
    unknown = await client.post(EDIT, json={"chat_id": 5, "message_id": 99, "text": "x"})
    other_chat = await client.post(EDIT, json={"chat_id": 6, "message_id": 1, "text": "x"})
    for answer in (unknown, other_chat):
        assert answer.status_code == 400
        assert answer.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message to edit not found",
        }
    same = await client.post(EDIT, json={"chat_id": 5, "message_id": 1, "text": "same"})
    assert same.status_code == 400
    assert same.json()["description"].startswith("Bad Request: message is not modified")
    calls = await received(client)
    assert [(c["status"], c["message_id"]) for c in calls] == [
        (200, 1),
        (400, None),
        (400, None),
        (400, None),
    ]


async def test_text_limits(fake: Any) -> None:
    client, state = fake
    longest = await client.post(SEND, json={"chat_id": 5, "text": "x" * 4096})
    assert longest.status_code == 200
    too_long = await client.post(SEND, json={"chat_id": 5, "text": "x" * 4097})
    assert too_long.status_code == 400
    assert too_long.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: message is too long",
    }
    for body in ({"chat_id": 5, "text": ""}, {"chat_id": 5}):
        empty = await client.post(SEND, json=body)
        assert (empty.status_code, empty.json()["description"]) == (
            400,
            "Bad Request: message text is empty",
        )
    assert list(state.messages[("telegram", "5")]) == [1]  # a refusal stores nothing


async def test_answer_callback_query(fake: Any) -> None:
    client, _state = fake
    path = f"/bot{TG_TOKEN}/answerCallbackQuery"
    answer = await client.post(path, json={"callback_query_id": "777", "text": "Approved"})
    assert answer.json() == {"ok": True, "result": True}
    missing = await client.post(path, json={})
    assert missing.status_code == 400
    calls = await received(client)
    assert [(c["callback_query_id"], c["text"], c["status"]) for c in calls] == [
        ("777", "Approved", 200),
        (None, None, 400),
    ]


async def test_unknown_telegram_token_is_unauthorized_and_never_recorded(fake: Any) -> None:
    client, _state = fake
    stranger = "999:stranger-secret"
    answer = await client.post(f"/bot{stranger}/sendMessage", json={"chat_id": 5, "text": "x"})
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    listing = await client.get("/_fake/received")
    [call] = listing.json()
    assert (call["bot"], call["status"], call["chat"]) == (fingerprint(stranger), 401, "5")
    assert stranger not in listing.text
    assert "stranger" not in listing.text


async def test_unknown_method_is_not_found_and_not_recorded(fake: Any) -> None:
    client, _state = fake
    answer = await client.post(f"/bot{TG_TOKEN}/sendDice", json={"chat_id": 5})
    assert (answer.status_code, answer.json()["error_code"]) == (404, 404)
    slack = await client.post("/api/chat.delete", json={}, headers=SLACK_AUTH)
    assert (slack.status_code, slack.json()["error"]) == (404, "unknown_method")
    assert await received(client) == []


async def test_post_message_answers_like_slack(fake: Any) -> None:
    client, _state = fake
    body = {"channel": "C0123", "text": "deploy?", "thread_ts": "1699999999.000001"}
    answer = await client.post(
        "/api/chat.postMessage", json=body | {"blocks": BLOCKS}, headers=SLACK_AUTH
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "channel": "C0123",
        "ts": "1700000000.000001",
        "message": {
            "type": "message",
            "text": "deploy?",
            "ts": "1700000000.000001",
            "thread_ts": "1699999999.000001",
            "blocks": BLOCKS,
        },
    }
    second = await client.post("/api/chat.postMessage", json=body, headers=SLACK_AUTH)
    assert second.json()["ts"] == "1700000000.000002"
    calls = await received(client, provider="slack")
    assert calls[0]["bot"] == "ops-app"
    assert calls[0]["thread"] == "1699999999.000001"
    assert calls[0]["buttons"] == [[{"text": "Yes", "data": "y"}, {"text": "No", "data": "n"}]]
    assert [c["message_id"] for c in calls] == ["1700000000.000001", "1700000000.000002"]


async def test_slack_takes_a_form_encoded_body_and_a_token_field(fake: Any) -> None:
    client, _state = fake
    form = {"channel": "C1", "text": "hi", "blocks": json.dumps(BLOCKS)}
    by_header = await client.post("/api/chat.postMessage", data=form, headers=SLACK_AUTH)
    by_field = await client.post("/api/chat.postMessage", data=form | {"token": SLACK_TOKEN})
    assert by_header.json()["ok"] is True
    assert by_field.json()["ok"] is True
    listing = await client.get("/_fake/received")
    assert [c["buttons"][0][0]["text"] for c in listing.json()] == ["Yes", "Yes"]
    assert SLACK_TOKEN not in listing.text


async def test_chat_update(fake: Any) -> None:
    client, state = fake
    posted = await client.post(
        "/api/chat.postMessage", json={"channel": "C1", "text": "pending"}, headers=SLACK_AUTH
    )
    ts = posted.json()["ts"]
    update = {"channel": "C1", "ts": ts, "text": "approved"}
    answer = await client.post("/api/chat.update", json=update, headers=SLACK_AUTH)
    assert answer.json() == {
        "ok": True,
        "channel": "C1",
        "ts": ts,
        "text": "approved",
        "message": {"type": "message", "text": "approved", "ts": ts},
    }
    assert state.find("slack", "C1", ts).text == "approved"
    missing = update | {"ts": "1.000001"}
    refused = await client.post("/api/chat.update", json=missing, headers=SLACK_AUTH)
    assert (refused.status_code, refused.json()) == (
        200,
        {"ok": False, "error": "message_not_found"},
    )


async def test_slack_refusals(fake: Any) -> None:
    client, _state = fake
    post = "/api/chat.postMessage"
    cases = [
        ({}, {"channel": "C1", "text": "x"}, "not_authed"),
        ({"Authorization": "Bearer xoxb-wrong"}, {"channel": "C1", "text": "x"}, "invalid_auth"),
        (SLACK_AUTH, {"text": "x"}, "channel_not_found"),
        (SLACK_AUTH, {"channel": "C1"}, "no_text"),
        (SLACK_AUTH, {"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        (SLACK_AUTH, {"channel": "C1", "text": "x", "blocks": "{"}, "invalid_blocks"),
    ]
    for headers, body, error in cases:
        answer = await client.post(post, json=body, headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"ok": False, "error": error})
    calls = await received(client)
    assert [c["error"] for c in calls] == [error for _h, _b, error in cases]
    assert calls[0]["bot"] is None
    assert calls[1]["bot"] == fingerprint("xoxb-wrong")


async def test_configured_chats_limit_both_providers() -> None:
    app, _state = create_app({TG_TOKEN: "bot"}, {SLACK_TOKEN: "app"}, chats=["5", "C1"])
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        assert (await client.post(SEND, json={"chat_id": 5, "text": "x"})).status_code == 200
        other = await client.post(SEND, json={"chat_id": 6, "text": "x"})
        assert other.json()["description"] == "Bad Request: chat not found"
        slack = await client.post(
            "/api/chat.postMessage", json={"channel": "C2", "text": "x"}, headers=SLACK_AUTH
        )
        assert slack.json() == {"ok": False, "error": "channel_not_found"}


async def test_unreadable_bodies_are_refused_and_recorded(fake: Any) -> None:
    client, _state = fake
    bad = b"{not json"
    headers = {"content-type": "application/json"}
    telegram = await client.post(SEND, content=bad, headers=headers)
    slack = await client.post("/api/chat.postMessage", content=bad, headers=headers | SLACK_AUTH)
    assert telegram.status_code == 400
    assert slack.json() == {"ok": False, "error": "invalid_form_data"}
    assert [c["status"] for c in await received(client)] == [400, 200]


async def test_telegram_429_fault_carries_retry_after_and_is_consumed_once(fake: Any) -> None:
    client, state = fake
    await faults(
        client, {"provider": "telegram", "method": "sendMessage", "status": 429, "retry_after": 3}
    )
    limited = await client.post(SEND, json={"chat_id": 5, "text": "x"})
    assert limited.status_code == 429
    assert limited.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    served = await client.post(SEND, json={"chat_id": 5, "text": "x"})
    assert served.json()["result"]["message_id"] == 1  # the refused call stored nothing
    calls = await received(client)
    assert [(c["status"], c["fault"], c["text"]) for c in calls] == [
        (429, True, "x"),
        (200, False, "x"),
    ]
    assert state.pending_faults() == []


async def test_slack_429_fault_carries_a_retry_after_header(fake: Any) -> None:
    client, _state = fake
    await faults(client, {"provider": "slack", "status": 429, "retry_after": 2})
    answer = await client.post(
        "/api/chat.postMessage", json={"channel": "C1", "text": "x"}, headers=SLACK_AUTH
    )
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.json() == {"ok": False, "error": "ratelimited"}


async def test_faults_are_served_in_order_to_matching_calls_only(fake: Any) -> None:
    client, _state = fake
    await faults(
        client,
        {"provider": "slack", "status": 500},
        {"status": 403, "times": 2},
        {"method": "editMessageText", "status": 500},
        {"provider": "slack", "status": 200, "error": "not_in_channel"},
    )
    statuses = []
    for _ in range(3):
        answer = await client.post(SEND, json={"chat_id": 5, "text": "x"})
        statuses.append((answer.status_code, answer.json().get("description")))
    assert statuses == [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: bot was blocked by the user"),
        (200, None),
    ]
    slack = []
    for _ in range(3):
        answer = await client.post(
            "/api/chat.postMessage", json={"channel": "C1", "text": "x"}, headers=SLACK_AUTH
        )
        slack.append((answer.status_code, answer.json().get("error")))
    assert slack == [(500, "internal_error"), (200, "not_in_channel"), (200, None)]
    pending = (await client.get("/_fake/faults")).json()["pending"]
    assert [(f["method"], f["status"], f["times"]) for f in pending] == [
        ("editMessageText", 500, 1)
    ]
    cleared = await client.delete("/_fake/faults")
    assert cleared.json() == {"cleared": 1}
    edit = await client.post(EDIT, json={"chat_id": 5, "message_id": 1, "text": "y"})
    assert edit.status_code == 200


async def test_a_fault_for_a_chat_waits_for_that_chat(fake: Any) -> None:
    client, _state = fake
    await faults(client, {"chat": 6, "status": 500})
    assert (await client.post(SEND, json={"chat_id": 5, "text": "x"})).status_code == 200
    answer = await client.post(SEND, json={"chat_id": 6, "text": "x"})
    assert answer.json() == {"ok": False, "error_code": 500, "description": "Internal Server Error"}


async def test_an_unauthorized_call_consumes_no_fault(fake: Any) -> None:
    client, state = fake
    await faults(client, {"status": 500})
    await client.post("/bot1:wrong/sendMessage", json={"chat_id": 5, "text": "x"})
    assert len(state.pending_faults()) == 1


async def test_a_delayed_answer_is_recorded_before_it_is_sent(fake: Any) -> None:
    client, state = fake
    await faults(client, {"delay_seconds": 0.3})
    started = time.monotonic()
    sending = asyncio.ensure_future(client.post(SEND, json={"chat_id": 5, "text": "slow"}))
    for _ in range(500):  # until the call is recorded, however slow the machine
        if state.received:
            break
        await asyncio.sleep(0.01)
    assert state.received[0].message_id == 1
    answer = await sending
    assert time.monotonic() - started >= 0.3
    assert answer.json()["result"]["text"] == "slow"
    [call] = await received(client)
    assert (call["status"], call["fault"], call["delay_seconds"]) == (200, True, 0.3)


async def test_invalid_faults_are_refused(fake: Any) -> None:
    client, state = fake
    for body in ({"status": 302}, {"status": 200, "error": "x"}, {"stauts": 500}, [1]):
        answer = await client.post("/_fake/faults", json=body)
        assert answer.status_code == 422, body
    garbled = await client.post(
        "/_fake/faults", content=b"{", headers={"content-type": "application/json"}
    )
    assert garbled.status_code == 422
    assert state.pending_faults() == []


async def test_received_filters_and_clears(fake: Any) -> None:
    client, _state = fake
    await client.post(SEND, json={"chat_id": 5, "text": "a"})
    await client.post(
        "/api/chat.postMessage", json={"channel": "C1", "text": "b"}, headers=SLACK_AUTH
    )
    await client.post(SEND, json={"chat_id": 6, "text": "c"})
    everything = await received(client)
    assert [(c["seq"], c["text"]) for c in everything] == [(1, "a"), (2, "b"), (3, "c")]
    assert [c["text"] for c in await received(client, provider="telegram")] == ["a", "c"]
    assert [c["text"] for c in await received(client, provider="telegram", chat="6")] == ["c"]
    assert [c["text"] for c in await received(client, method="chat.postMessage")] == ["b"]
    assert (await client.delete("/_fake/received")).json() == {"cleared": 3}
    assert await received(client) == []


async def test_logs_name_bots_never_tokens(fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _state = fake
    logs: list[dict[str, Any]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            logs.append({"event": event, **fields})

    monkeypatch.setattr(fake_chat_api, "_log", Recorder)
    await client.post(SEND, json={"chat_id": 5, "text": "x"})
    await client.post(
        "/api/chat.postMessage", json={"channel": "C1", "text": "x"}, headers=SLACK_AUTH
    )
    assert [line["bot"] for line in logs] == ["support-bot", "ops-app"]
    assert TG_TOKEN not in repr(logs)


def test_command_line_never_echoes_a_malformed_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--telegram-token", "123:no-name-given"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--telegram-token takes NAME=TOKEN" in err
    assert "no-name-given" not in err

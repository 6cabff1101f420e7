"""The end of `make run`: a write that waits for a person, approved with a chat button.

In the `ops` tenant (suggest mode, deploy/contracts/ops) telegram user 3002 asks the
on-call group's bot to restart checkout. The restart is a write: the gateway holds it,
the approval service asks the policy's approvers, and the runtime posts the request with
Approve and Reject buttons into the group (the fake Telegram chat). Alice (user 3003, an
approver; the person asking never approves their own request) presses Approve: the
press goes through ingress like any Telegram `callback_query`, the token is granted,
the gateway runs the restart once, and the run completes. Its timeline shows the
request, the vote, the token and the execution.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from awooop.cli import dev_chat
from awooop.cli.demo_signals import StopSignals
from awooop.cli.queries import QueryClient, format_timeline
from awooop.cli.send import produce, telegram_callback_record, telegram_record
from awooop.infra.settings import Settings

PROJECT = "ops"
BOT = "7200"
ASKER = "3002"
APPROVER = "3003"
ONCALL_CHAT = "-1003000"
TEXT = "Checkout is stuck again, please restart it."
FINISHED = ("completed", "failed", "cancelled", "timeout")


def _poll(found: Callable[[], Any], stop: StopSignals, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.received.is_set():
        if (value := found()) is not None:
            return value
        time.sleep(0.2)
    return None


def _chat_call(fake_chat_url: str, seen: int, method: str, buttons: bool) -> Any:
    for call in dev_chat.received(fake_chat_url, chat=ONCALL_CHAT, method=method):
        if call["seq"] > seen and call["ok"] and bool(call.get("buttons")) == buttons:
            return call
    return None


def _new_run(client: QueryClient, known: set[str], states: tuple[str, ...]) -> Any:
    for run in client.runs(limit=10):
        if run["run_id"] not in known and run["state"] in states:
            return run
    return None


def _button(call: dict[str, Any], label: str) -> str:
    return str(next(b["data"] for row in call["buttons"] for b in row if b["text"] == label))


def push_approval(stop: StopSignals, fake_chat_url: str) -> bool:
    """Ask for a restart, approve it by button as a second person, show the run; False
    when a step did not happen in time."""
    settings = Settings.from_env()
    client = QueryClient(PROJECT)
    try:
        known = {run["run_id"] for run in client.runs(limit=200)}
        seen = max((c["seq"] for c in dev_chat.received(fake_chat_url)), default=0)
        print(
            f"\n[approval] {PROJECT}: telegram user {ASKER} in the on-call group {ONCALL_CHAT} "
            f"to bot {BOT}: {TEXT!r}"
        )
        asked = telegram_record(
            project=PROJECT,
            bot=BOT,
            update_id=int(time.time() * 1000),
            user=ASKER,
            text=TEXT,
            chat=ONCALL_CHAT,
        )
        asyncio.run(produce(settings, *asked))
        request = _poll(lambda: _chat_call(fake_chat_url, seen, "sendMessage", True), stop, 60)
        if request is None:
            print("  no approval request reached the on-call group within 60 s")
            return False
        labels = " ".join(f"[{b['text']}]" for row in request["buttons"] for b in row)
        print(f"  the on-call group received the approval request: {request['text']!r} {labels}")
        print(f"\n  alice (telegram user {APPROVER}) presses Approve")
        pressed = telegram_callback_record(
            project=PROJECT,
            bot=BOT,
            update_id=int(time.time() * 1000),
            user=APPROVER,
            chat=ONCALL_CHAT,
            message_id=int(request["message_id"]),
            data=_button(request, "Approve"),
        )
        asyncio.run(produce(settings, *pressed))
        run = _poll(lambda: _new_run(client, known, FINISHED), stop, 60)
        if run is None:
            print("  the approved run did not finish within 60 s; see the process logs")
            return False
        detail = client.run(run["run_id"])
        if detail is not None:
            print("\n".join(format_timeline(detail)))
        edited = _poll(lambda: _chat_call(fake_chat_url, seen, "editMessageText", False), stop, 15)
        if edited is not None:
            print(f"  the request in the on-call group now reads: {edited['text']!r}")
        return str(run["state"]) == "completed"
    finally:
        client.close()

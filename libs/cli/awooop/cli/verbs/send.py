"""The arguments of `awooop send telegram`; `awooop.cli.send` produces the record."""

from __future__ import annotations

import argparse
from typing import Any

from awooop.cli.demo_tenant import DEFAULT_BOT, DEFAULT_PROJECT, DEFAULT_USER
from awooop.cli.verbs.deferred import DeferredHandler

WORK = "awooop.cli.send"


def register(verbs: argparse._SubParsersAction[Any]) -> None:
    send = verbs.add_parser("send", help="produce a channel event onto the inbound topic")
    channels = send.add_subparsers(dest="channel", required=True, metavar="CHANNEL")
    telegram = channels.add_parser("telegram", help="a Telegram text message update")
    telegram.add_argument("--text", required=True)
    telegram.add_argument("--update-id", type=int, help="Telegram's update_id (default: now)")
    telegram.add_argument("--project", default=DEFAULT_PROJECT)
    telegram.add_argument("--user", default=DEFAULT_USER, help="the Telegram user id")
    telegram.add_argument("--bot", default=DEFAULT_BOT, help="the receiving bot's id")
    telegram.set_defaults(handler=DeferredHandler(WORK, "send_telegram"))

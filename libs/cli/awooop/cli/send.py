"""`awooop send telegram`: produce a Telegram text update as a bridge would (its
arguments: `awooop.cli.verbs.send`)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from awooop.contracts.registries.topics import Topics
from awooop.infra.settings import Settings


def telegram_record(
    *, project: str, bot: str, update_id: int, user: str, text: str, chat: str | None = None
) -> tuple[bytes, bytes]:
    """The inbound record (key, value) a Telegram bridge produces for one text message,
    written by `user` in `chat` (default: the private chat with `user`)."""
    where = {"id": int(chat), "type": "group"} if chat else {"id": int(user), "type": "private"}
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": where,
            "from": {"id": int(user), "is_bot": False, "first_name": "Demo"},
            "text": text,
        },
    }
    return _inbound(project, bot, update_id, update)


def telegram_callback_record(
    *, project: str, bot: str, update_id: int, user: str, chat: str, message_id: int, data: str
) -> tuple[bytes, bytes]:
    """The inbound record a Telegram bridge produces when `user` presses an inline button
    (its `data`) of message `message_id` in `chat`: a `callback_query` update."""
    update = {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": {"id": int(user), "is_bot": False, "first_name": "Demo"},
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": int(chat), "type": "group"},
            },
            "chat_instance": f"ci-{chat}",
            "data": data,
        },
    }
    return _inbound(project, bot, update_id, update)


def _inbound(project: str, bot: str, update_id: int, update: dict[str, Any]) -> tuple[bytes, bytes]:
    provider_event_id = f"{bot}:{update_id}"
    record = {
        "project_id": project,
        "channel_type": "telegram",
        "provider_event_id": provider_event_id,
        "received_at": dt.datetime.now(dt.UTC).isoformat(),
        "payload": update,
    }
    return f"{project}:{provider_event_id}".encode(), json.dumps(record).encode()


async def produce(settings: Settings, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
    finally:
        await producer.stop()


def send_telegram(args: argparse.Namespace) -> int:
    update_id = args.update_id if args.update_id is not None else int(time.time() * 1000)
    key, value = telegram_record(
        project=args.project, bot=args.bot, update_id=update_id, user=args.user, text=args.text
    )
    asyncio.run(produce(Settings.from_env(), key, value))
    print(f"sent telegram update {args.bot}:{update_id} for project {args.project}")
    return 0

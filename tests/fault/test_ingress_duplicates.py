"""Two ingress processes, a third of the records duplicated, one ingress and Redis killed
halfway: exactly one run per distinct provider event, and every duplicate visible as
`duplicate_of` the event the first record became.

Duplicates come two ways, as they do in production: the same record produced again (a
producer retry) and the same update framed anew by a retrying bridge (a later
`received_at`). Ingress decides duplicates in Postgres, so losing Redis changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from awooop.cli.send import telegram_record
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from support.platform_procs import RunningPlatform, own_platform
from support.topic_reader import TopicReader

pytestmark = pytest.mark.fault

PROJECT = "dup"
BOT = "7401"
DISTINCT = 40
DUPLICATED = 12  # 30% of the distinct events


def _reframed(value: bytes) -> bytes:
    record = json.loads(value)
    record["received_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).isoformat()
    return json.dumps(record).encode()


def _records() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    originals = [
        telegram_record(
            project=PROJECT, bot=BOT, update_id=n, user=str(5000 + n), text=f"status {n}?"
        )
        for n in range(1, DISTINCT + 1)
    ]
    chosen = random.Random(20).sample(range(DISTINCT), DUPLICATED)
    repeats = [
        (originals[i][0], originals[i][1] if k % 2 else _reframed(originals[i][1]))
        for k, i in enumerate(chosen)
    ]
    return originals, repeats


async def _produce(platform: RunningPlatform, records: list[tuple[bytes, bytes]]) -> None:
    bootstrap = platform.env["AWOOOP_KAFKA_BOOTSTRAP"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
    finally:
        await producer.stop()


def _of(events: list[Envelope[Any]], event_type: str) -> list[Envelope[Any]]:
    return [e for e in events if e.project_id == PROJECT and e.event_type == event_type]


async def test_duplicates_across_two_ingress_processes_start_one_run_each(
    tmp_path: Path,
) -> None:
    with own_platform(tmp_path / "platform") as platform:
        platform.onboard_like_demo(PROJECT, BOT)
        platform.start("ingress-2", service="ingress")
        platform.wait_ready()
        originals, repeats = _records()
        half = DISTINCT // 2
        sends = originals[:half] + repeats[: DUPLICATED // 2]
        await _produce(platform, sends)
        # The second ingress dies mid-stream (SIGKILL): what it fetched but had not
        # committed is redelivered to the first, and must leave no second trace.
        platform.signal("ingress-2")
        platform.forget("ingress-2")
        platform.stack.stop_redis()
        await _produce(platform, originals[half:] + repeats[DUPLICATED // 2 :])

        platform.wait_for_runs(PROJECT, DISTINCT, within=120)
        bootstrap = platform.env["AWOOOP_KAFKA_BOOTSTRAP"]
        async with TopicReader(bootstrap, Topics.INGRESS_EVENTS.name) as reader:
            seen = await reader.until(
                lambda s: len(_of(s, "ingress.duplicate_received")) >= DUPLICATED, within=60
            )
        await asyncio.sleep(1.0)  # anything recorded twice would show by now
        runs = platform.wait_for_runs(PROJECT, DISTINCT, within=5)
        assert len(runs) == DISTINCT

        messages = _of(seen, "ingress.message_received")
        duplicates = _of(seen, "ingress.duplicate_received")
        assert len(messages) == DISTINCT
        assert len({m.payload.provider_event_id for m in messages}) == DISTINCT
        assert len(duplicates) == DUPLICATED
        first = {m.payload.provider_event_id: m.event_id for m in messages}
        assert all(d.payload.duplicate_of == first[d.payload.provider_event_id] for d in duplicates)
        # What the API shows: every duplicate, naming the event it repeats.
        with platform.api(PROJECT) as client:
            shown = client.get(
                "/v1/channel-events", params={"outcome": "duplicate_of", "limit": 500}
            ).json()
        items = shown["items"] if isinstance(shown, dict) else shown
        assert sorted(str(i["duplicate_of"]) for i in items) == sorted(
            str(d.payload.duplicate_of) for d in duplicates
        )

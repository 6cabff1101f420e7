"""A failover, a revoked grant and a stopped server, under traffic, against the platform.

Break caught: database faults taken for poison — under the old allow-list a read-only
node (25006) or a revoked privilege (42501) sent every record to the DLQ and, with Kafka
offsets, committed the ingress input past them, so those messages never got a run. Here
every phase must leave the DLQ empty, turn ingress unready, commit nothing while it
lasts, and, once over, every inbound record must have produced its run (counted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import Topics
from support.dlq_reader import dead_letters
from support.fault_helpers import admin_connection
from support.infra import unique
from support.platform_procs import RunningPlatform, own_platform

pytestmark = [pytest.mark.fault, pytest.mark.timeout(300)]

INBOUND = Topics.CHANNEL_INBOUND.name


class Traffic:
    """Inbound Telegram messages, one every `every` seconds, each from its own person
    (so each must start a run of its own)."""

    def __init__(self, bootstrap: str, project: str, every: float = 0.1) -> None:
        self._bootstrap, self._project, self._every = bootstrap, project, every
        self.sent = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Traffic:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
        await producer.start()
        try:
            while not self._stop.is_set():
                key, value = telegram_record(
                    project=self._project,
                    bot="7000",
                    update_id=10_000 + self.sent,
                    user=str(50_000 + self.sent),
                    text=f"message {self.sent}",
                )
                await producer.send_and_wait(INBOUND, value, key=key)
                self.sent += 1
                await asyncio.sleep(self._every)
        finally:
            await producer.stop()


def _ready(running: RunningPlatform, name: str) -> tuple[bool, dict[str, str]]:
    port = running.platform.health_ports[name]
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0)
    except httpx.HTTPError:
        return False, {}
    body = answer.json()
    return answer.status_code == 200, body.get("reasons", {})


async def _until(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _committed(bootstrap: str, group: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        found = {}
        for partition in range(Topics.CHANNEL_INBOUND.partitions):
            offset = await consumer.committed(TopicPartition(INBOUND, partition))
            if offset is not None:
                found[partition] = offset
        return found
    finally:
        await consumer.stop()


async def _fault_phase(
    running: RunningPlatform,
    traffic: Traffic,
    name: str,
    begin: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]],
) -> None:
    bootstrap = running.env["AWOOOP_KAFKA_BOOTSTRAP"]
    await begin()
    # The relay, polling, may see the fault before the consumer's next batch does:
    # wait for the consumer's own outage, which the traffic brings about.
    await _until(
        lambda: "outage" in _ready(running, "ingress")[1], f"the consumer's outage ({name})"
    )
    before, sent_before = await _committed(bootstrap, "awooop.ingress"), traffic.sent
    await _until(lambda: traffic.sent >= sent_before + 15, f"traffic during {name}")
    assert await _committed(bootstrap, "awooop.ingress") == before, f"committed during {name}"
    assert not _ready(running, "ingress")[0], name
    await end()
    await _until(lambda: _ready(running, "ingress")[0], f"ingress ready after {name}", 60)


async def test_database_faults_under_traffic_lose_nothing_and_dead_letter_nothing(
    tmp_path: Path,
) -> None:
    project = unique("f")
    with own_platform(tmp_path / "home", AWOOOP_RUNTIME_LEASE_SECONDS="4") as running:
        running.onboard_like_demo(project, "7000")
        bootstrap = running.env["AWOOOP_KAFKA_BOOTSTRAP"]
        admin: asyncpg.Connection = await admin_connection(running)

        async def read_only() -> None:
            await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            await admin.execute("SELECT pg_reload_conf()")

        async def writable() -> None:
            await admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
            await admin.execute("SELECT pg_reload_conf()")

        async def revoke() -> None:
            await admin.execute("REVOKE INSERT ON ingress.events FROM awooop_ingress")

        async def grant() -> None:
            await admin.execute("GRANT INSERT ON ingress.events TO awooop_ingress")

        async def stop_server() -> None:
            await admin.close()
            running.stack.stop_postgres()

        async def start_server() -> None:
            running.stack.start_postgres()

        try:
            async with Traffic(bootstrap, project) as traffic:
                await _until(lambda: traffic.sent >= 10, "traffic flowing")
                await _fault_phase(running, traffic, "read-only", read_only, writable)
                await _fault_phase(running, traffic, "revoked grant", revoke, grant)
                await _fault_phase(running, traffic, "stopped server", stop_server, start_server)
                after = traffic.sent
                await _until(lambda: traffic.sent >= after + 5, "traffic after the faults")
            total = traffic.sent
            runs = running.wait_for_runs(project, total, within=180)
        finally:
            if not admin.is_closed():
                await admin.close()
        assert len({r["run_id"] for r in runs}) == total
        assert await dead_letters(bootstrap) == []

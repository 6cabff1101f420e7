"""A broker loss under a populated platform, then `awooop recover broker-reset`.

The embedded broker is restarted empty (every topic, record and committed offset
gone) while the five services run with runs of two tenants behind them. Every
service must notice and halt with `E-BROKER-RESET`; the recovery must bring each of
them back in place (no process restarted by the test), with read models whose
checksums equal the ones before the loss, write-side stores that re-reading the whole
refilled log did not grow by one event (no handler applied anything twice: a second
tool execution would add gateway events), and new messages that run.

Breaks caught: a service that adopts the new broker by itself or never resumes; an
outbox not refilled (rebuilt read models differ) or refilled out of order (a stream's
events read out of `stream_seq` order on the new broker); a consumer
that re-applies the refilled log (store counts grow); a rebuild that misses records
or records the wrong epoch (the projector stays halted or the checksums differ).

Then the same through `awooop dev up`, the way the embedded stack meets a broker
that died: a new broker on the port the services still dial, and the recovery run
before `dev up` returns.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from awooop.cli.platform import SERVICES
from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import ALL_TOPICS, Topics
from awooop.infra.embedded import broker as broker_piece
from awooop.infra.embedded.stack import EXTERNAL_VARS
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.domain.checksums import Checksums, differences
from support.platform_procs import RunningPlatform, own_platform

pytestmark = pytest.mark.fault

TENANTS = ("br-alpha", "br-beta")
RUNS = 8
BOT = "7200"
WRITE_SIDE = ("ingress", "runtime", "mcp_gateway", "approval")


async def _send(bootstrap: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(Topics.CHANNEL_INBOUND.name, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _bot(tenant: int) -> str:
    """Each tenant's own bot: a bot's chats belong to one project."""
    return str(int(BOT) + tenant)


def _messages(tenant: int, first: int, count: int) -> list[tuple[bytes, bytes]]:
    return [
        telegram_record(
            project=TENANTS[tenant],
            bot=_bot(tenant),
            update_id=10_000 * tenant + n,
            user=str(800_000 + 1000 * tenant + n),
            text=f"status {TENANTS[tenant]} {n}",
        )
        for n in range(first, first + count)
    ]


async def _state(admin_url: str) -> tuple[Checksums, dict[str, int]]:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        counts = {s: await conn.fetchval(f"SELECT count(*) FROM {s}.events") for s in WRITE_SIDE}
        return await schema_checksums(conn, "projector"), counts
    finally:
        await conn.close()


async def _streams_out_of_order(bootstrap: str) -> list[str]:
    """Every place where a stream's events reached a partition of the new broker in another
    order than their `stream_seq` (the refill publishes in position order)."""
    relayed = [t.name for t in ALL_TOPICS if t.producer in WRITE_SIDE]
    async with LogReader(KafkaSettings(bootstrap), partitions_of(relayed)) as reader:
        records = await reader.read_all(within=60)
    last: dict[tuple[str, int, str], int] = {}
    found = []
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        envelope = json.loads(record.value)
        key = (record.topic, record.partition, envelope["stream_id"])
        if envelope["stream_seq"] < last.get(key, 0):
            found.append(f"{key}: {envelope['stream_seq']} after {last[key]}")
        last[key] = max(last.get(key, 0), envelope["stream_seq"])
    return found


def _readiness(running: RunningPlatform) -> dict[str, tuple[int, str]]:
    answers = {}
    with httpx.Client(timeout=2.0) as client:
        for name in SERVICES:
            port = running.platform.health_ports[name]
            try:
                response = client.get(f"http://127.0.0.1:{port}/readyz")
                answers[name] = (response.status_code, response.text)
            except httpx.HTTPError as error:
                answers[name] = (0, repr(error))
    return answers


def _until(check, within: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(0.25)


def _settled(running: RunningPlatform, admin_url: str) -> tuple[Checksums, dict[str, int]]:
    """The read models and store counts once two looks a second apart agree."""
    previous = asyncio.run(_state(admin_url))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = asyncio.run(_state(admin_url))
        if current[1] == previous[1] and not differences(current[0], previous[0]):
            return current
        previous = current
    raise AssertionError(f"read models still moving after 60s; logs in {running.platform.logs}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    home = tmp_path_factory.mktemp("broker-reset") / "home"
    with own_platform(home, AWOOOP_EPOCH_CHECK_SECONDS="1") as platform:
        for tenant, project in enumerate(TENANTS):
            platform.onboard_like_demo(project, _bot(tenant))
        yield platform


def test_a_lost_broker_is_recovered_with_equal_read_models(running: RunningPlatform) -> None:
    bootstrap = running.env["AWOOOP_KAFKA_BOOTSTRAP"]
    admin_url = running.env["AWOOOP_DATABASE_URL"]
    first = [*_messages(0, 0, RUNS), *_messages(1, 0, RUNS)]
    asyncio.run(_send(bootstrap, [*first, first[0]]))  # one redelivered
    for tenant in TENANTS:
        running.wait_for_runs(tenant, RUNS, within=90)
    before, stores = _settled(running, admin_url)
    assert all(before.tables["runs"][t].rows == RUNS for t in TENANTS)

    running.stack.restart_broker()

    def all_halted() -> dict[str, tuple[int, str]] | None:
        answers = _readiness(running)
        reset = all(code == 503 and "E-BROKER-RESET" in text for code, text in answers.values())
        return answers if reset else None

    halted = _until(all_halted, within=30, what="every service to halt with E-BROKER-RESET")
    assert set(halted) == set(SERVICES)
    running.platform.check_alive()  # halted, not exited

    # A plain rebuild would chase the lost broker's offsets in the new, empty log.
    refused = running.cli("projector", "rebuild", "--quiet", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "awooop recover broker-reset" in refused.stderr, refused.stderr

    recovered = running.cli("recover", "broker-reset", "--quiet")
    assert "read models rebuilt" in recovered.stdout, recovered.stdout
    for schema in WRITE_SIDE:
        if stores[schema]:
            assert f"{schema}: outbox refilled with {stores[schema]} events" in (
                recovered.stdout
            ), recovered.stdout

    running.wait_ready(timeout=60)
    after, stores_after = _settled(running, admin_url)
    assert differences(before, after) == []
    assert stores_after == stores, "a service applied the refilled log again"

    assert asyncio.run(_streams_out_of_order(bootstrap)) == []

    again = running.cli("recover", "broker-reset", "--quiet")
    assert "on this epoch already" in again.stdout, again.stdout

    asyncio.run(_send(bootstrap, _messages(0, RUNS, 2)))
    running.wait_for_runs(TENANTS[0], RUNS + 2, within=60)


def test_dev_up_next_to_a_lost_broker_recovers_and_the_services_resume(
    running: RunningPlatform,
) -> None:
    """The embedded broker dies under the running platform; `awooop dev up` starts a new
    one on the same port and recovers, and the services come back without a restart."""
    admin_url = running.env["AWOOOP_DATABASE_URL"]
    before, stores = _settled(running, admin_url)
    lost = running.stack.stack.recorded()["broker"]
    broker_piece.stop_broker(lost)

    # As an operator would run it: the embedded pieces from stack.json, no URLs.
    env = {k: v for k, v in os.environ.items() if k not in EXTERNAL_VARS.values()}
    up = subprocess.run(
        [sys.executable, "-m", "awooop.cli.main", "dev", "up"],
        env={**env, "AWOOOP_HOME": str(running.home), "AWOOOP_EPOCH_CHECK_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert "started empty next to Postgres data of an earlier one: recovering" in up.stdout
    assert "read models rebuilt" in up.stdout, up.stdout
    assert running.stack.stack.recorded()["broker"].port == lost.port

    running.wait_ready(timeout=60)
    after, stores_after = _settled(running, admin_url)
    assert differences(before, after) == []
    assert stores_after == stores, "a service applied the refilled log again"

    asyncio.run(_send(running.env["AWOOOP_KAFKA_BOOTSTRAP"], _messages(1, RUNS, 2)))
    running.wait_for_runs(TENANTS[1], RUNS + 2, within=60)

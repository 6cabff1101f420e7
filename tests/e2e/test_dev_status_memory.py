"""`awooop dev status` says how many records the embedded broker holds and about how much
memory they take, and warns past AWOOOP_EMBEDDED_BROKER_WARN_MB, still exiting 0."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from awooop.contracts.registries.topics import ALL_TOPICS, Topics
from awooop.infra.embedded.broker_memory import broker_memory
from awooop.infra.embedded.postgres import postgres_data_dir
from awooop.infra.embedded.stack import EXTERNAL_VARS, EmbeddedStack
from awooop.infra.kafka.admin import ensure_topics
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import DEV_FETCH_MAX_WAIT_MS, KafkaSettings

pytestmark = pytest.mark.e2e

COMMAND = [sys.executable, "-m", "awooop.cli.main"]


def awooop(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in EXTERNAL_VARS.values()}
    env |= {"AWOOOP_HOME": str(home), **extra}
    return subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "stack"
    started = awooop(home, "dev", "up")
    assert started.returncode == 0, started.stderr
    yield home
    awooop(home, "dev", "down")
    data_dir = postgres_data_dir(home)
    if not data_dir.is_relative_to(home):
        shutil.rmtree(data_dir.parent, ignore_errors=True)


async def fill(settings: KafkaSettings) -> int:
    """Registry topics, then records in several multi-record batches (the shape on which
    `end_offsets()` is wrong); the number sent."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
    await producer.start()
    try:
        for partition in range(5):
            batch = producer.create_batch()
            for _ in range(9):
                batch.append(key=None, value=b"x" * 700, timestamp=None)
            await producer.send_batch(batch, Topics.RUN_EVENTS.name, partition=partition % 3)
        await producer.send_and_wait(Topics.DLQ.name, b"y", partition=4)
    finally:
        await producer.stop()
    return 5 * 9 + 1


async def read_everything(settings: KafkaSettings) -> int:
    async with LogReader(settings, partitions_of(t.name for t in ALL_TOPICS)) as reader:
        return len(await reader.read_all(within=30))


def test_status_counts_the_records_and_warns_past_the_setting(home: Path) -> None:
    bootstrap = EmbeddedStack(home, env={}).recorded()["broker"].url
    settings = KafkaSettings(bootstrap=bootstrap, fetch_max_wait_ms=DEV_FETCH_MAX_WAIT_MS)

    empty = awooop(home, "dev", "status")
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert "records in the embedded broker: 0, about 0 MB" in empty.stdout

    loop = asyncio.new_event_loop()  # not the loop pytest-asyncio shares across tests
    try:
        sent = loop.run_until_complete(fill(settings))
        # The cheap count (fetches past the end) against reading every record.
        assert loop.run_until_complete(broker_memory(settings)).records == sent
        assert loop.run_until_complete(read_everything(settings)) == sent
    finally:
        loop.close()

    quiet = awooop(home, "dev", "status")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert f"records in the embedded broker: {sent}, about 0.0414 MB" in quiet.stdout
    assert "warning" not in quiet.stdout

    loud = awooop(home, "dev", "status", AWOOOP_EMBEDDED_BROKER_WARN_MB="0.04")
    assert loud.returncode == 0, loud.stdout + loud.stderr
    warning = [line for line in loud.stdout.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert re.search(
        r"about 0\.0414 MB of records, over AWOOOP_EMBEDDED_BROKER_WARN_MB=0\.04", warning[0]
    )
    running = [line.split()[:2] for line in loud.stdout.splitlines()[:3]]
    assert running == [["broker", "running"], ["postgres", "running"], ["redis", "running"]]

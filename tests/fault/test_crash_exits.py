"""A process whose consumer or background task dies says so: unready, then a non-zero exit.

Break caught: a long-lived task that ends with an exception while `/readyz` stays green
and the process lives on doing nothing (the task's exception lost in a re-raise nobody
awaits), so no supervisor ever restarts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.infra.embedded.processes import free_port
from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres.roles import provision_services
from awooop.infra.service_main import EXIT_CRASHED, EXIT_NOT_CONFIGURED
from awooop.infra.settings import without_credentials
from support.crashing_service import background_spec
from support.infra import StackUrls, migrated, unique
from support.pipeline import CODEC, TOPIC, envelope

pytestmark = pytest.mark.fault

SCRIPT = Path(__file__).parents[1] / "support" / "crashing_service.py"


def _start(
    urls: StackUrls, home: Path, mode: str, trigger: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = home / f"{mode}.log"
    env = {
        **os.environ,
        "AWOOOP_KAFKA_BOOTSTRAP": urls.kafka,
        "AWOOOP_POSTGRES_URL": without_credentials(urls.database),
        "AWOOOP_REDIS_URL": urls.redis,
        "AWOOOP_HOME": str(home),
        "AWOOOP_HEALTH_PORT": str(port),
        "AWOOOP_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "AWOOOP_KAFKA_HEARTBEAT_MS": "300",
        "AWOOOP_KAFKA_FETCH_MAX_WAIT_MS": "25",
        "AWOOOP_KAFKA_REPLICATION_FACTOR": "1",  # one broker, and no stack.json to say so
        "AWOOOP_KAFKA_MIN_INSYNC_REPLICAS": "1",
        "AWOOOP_LOG_FORMAT": "json",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), mode, trigger],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port, log


def _touch(path: str) -> None:
    Path(path).touch()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"never ready:\n{log.read_text()}")


def _watch_until_exit(process: subprocess.Popen[bytes], port: int) -> list[dict[str, object]]:
    """Every /readyz answer from now until the process exits (at most 20 s)."""
    answers: list[dict[str, object]] = []
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=0.5) as client:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                response = client.get(f"http://127.0.0.1:{port}/readyz")
                answers.append({"status": response.status_code, **response.json()})
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return answers


@pytest.mark.parametrize("mode", ["background", "consumer"])
async def test_a_task_that_dies_turns_the_process_unready_then_exits_non_zero(
    stack_urls: StackUrls, kafka_ready: StackUrls, tmp_path: Path, mode: str
) -> None:
    project = unique("p")
    trigger = str(tmp_path / "trigger") if mode == "background" else project
    await migrated(stack_urls.database, background_spec(tmp_path / "trigger"))
    process, port, log = _start(stack_urls, tmp_path, mode, trigger)
    try:
        _wait_ready(process, port, log)
        if mode == "background":
            _touch(trigger)
        else:
            producer = create_producer(stack_urls.settings().kafka)
            await producer.start()
            try:
                env = envelope(project, f"{project}-run", 1)
                headers = record_headers(env, make_traceparent(env.trace_id))
                await producer.send_and_wait(TOPIC, CODEC.encode(env), key=b"k", headers=headers)
            finally:
                await producer.stop()
        answers = _watch_until_exit(process, port)
        assert process.wait(timeout=10) == EXIT_CRASHED, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    crashed = [a for a in answers if a["status"] == 503 and "crashed" in a.get("reasons", {})]
    assert crashed, f"never seen unready before the exit: {answers[-3:]}"
    assert "E-SERVICE-CRASHED" in str(crashed[0]["reasons"])
    assert "planted" in log.read_text()


async def test_a_service_started_before_awooop_migrate_exits_and_names_it(
    stack_urls: StackUrls, tmp_path: Path
) -> None:
    """Break caught: a service that migrates its own schema at start (so it must hold the
    admin URL), or one that starts on a schema its code does not match."""
    service = unique("unmigrated").replace("-", "_")
    # Its role and schema exist (another version ran once), its migrations do not.
    await provision_services(stack_urls.database, [service])
    process, _port, log = _start(stack_urls, tmp_path, "plain", service)
    status = process.wait(timeout=60)
    text = log.read_text()
    assert status == EXIT_NOT_CONFIGURED, text
    assert "E-SCHEMA-BEHIND" in text
    assert "awooop migrate" in text
    assert "Traceback" not in text

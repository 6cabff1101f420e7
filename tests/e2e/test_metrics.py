"""`/metrics` on every service: lag, batches, DLQ and relay figures that move under load.

Break caught: a metrics endpoint that answers but never changes (figures read from
objects nobody updates), lag that is never sampled, or a label that carries a tenant.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import Topics
from support.infra import unique
from support.platform_procs import SERVICES, RunningPlatform, own_platform

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(running: RunningPlatform, service: str) -> Samples:
    port = running.platform.health_ports[service]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def series(samples: Samples, name: str) -> list[frozenset[tuple[str, str]]]:
    return [ls for (n, ls) in samples if n == name]


async def _send(bootstrap: str, project: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(count):
            key, value = telegram_record(
                project=project, bot="7000", update_id=900 + i, user=str(7000 + i), text=f"m{i}"
            )
            await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
        await producer.send_and_wait(
            Topics.CHANNEL_INBOUND.name, b"{not an inbound record", key=f"{project}:bad".encode()
        )
    finally:
        await producer.stop()


async def test_metrics_of_every_service_move_under_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = unique("m")
    with own_platform(tmp_path / "home") as running:
        running.onboard_like_demo(project, "7000")
        before = {service: scrape(running, service) for service in SERVICES}
        for service, samples in before.items():
            assert total(samples, "awooop_ready", service=service) == 1, service
        await _send(running.env["AWOOOP_KAFKA_BOOTSTRAP"], project, 20)
        running.wait_for_runs(project, 20)
        await asyncio.sleep(2.5)  # one sampler period: lag and backlog sampled after the load
        after = {service: scrape(running, service) for service in SERVICES}

    for service in ("ingress", "runtime", "mcp_gateway", "projector"):
        grew = total(after[service], "awooop_consumer_records_total") - total(
            before[service], "awooop_consumer_records_total"
        )
        assert grew > 0, f"{service} handled no records by its metrics"
        assert total(after[service], "awooop_consumer_batches_total") > total(
            before[service], "awooop_consumer_batches_total"
        ), service
        lag = series(after[service], "awooop_consumer_lag_records")
        assert lag, f"{service} reports no lag series"
        assert total(after[service], "awooop_consumer_lag_records") == 0, service
    # Ingress: 20 messages in, one inbound record refused and dead-lettered, 21 events out
    # (the refused record's is its inbound_rejected).
    assert total(after["ingress"], "awooop_dlq_records_total", code="E-INBOUND-INVALID") == 1
    for service in ("ingress", "runtime", "mcp_gateway"):
        published = total(after[service], "awooop_relay_published_total") - total(
            before[service], "awooop_relay_published_total"
        )
        assert published >= 20, f"{service} relay published {published}"
        assert total(after[service], "awooop_relay_backlog_rows") == 0, service
    assert (
        total(after["ingress"], "awooop_relay_published_total")
        - total(before["ingress"], "awooop_relay_published_total")
        == 21
    )
    # Every run was leased at least once, by its message or by the claim loop.
    claimed = total(after["runtime"], "awooop_runtime_runs_claimed_total") - total(
        before["runtime"], "awooop_runtime_runs_claimed_total"
    )
    assert claimed >= 20, f"runtime claimed {claimed} runs"
    # No tenant, run or event id ever becomes a label value.
    for samples in after.values():
        for _name, labels in samples:
            for _key, value in labels:
                assert project not in value
                assert not re.fullmatch(r"[0-9a-f-]{36}", value)

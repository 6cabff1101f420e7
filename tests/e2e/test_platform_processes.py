"""The platform's processes as an operator sees them, on one platform started with a
password per role and a contract signing key (with its verifying ring) in its
environment.

No service process holds the admin URL, another role's password, the contract
signing key of the approval service or, but ingress, a tenant's chat bot token; the fake
chat API (no service) holds none of them. Break caught: a supervisor that hands its own
environment (the admin URL or the signing key among it) to every child, or a service
whose settings keep the admin URL it was started with.

`/metrics` on every service: lag, batches, DLQ and relay figures that move under load.
Break caught: a metrics endpoint that answers but never changes (figures read from
objects nobody updates), lag that is never sampled, or a label that carries a tenant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from awooop.cli.dev_chat import is_bot_token_variable
from awooop.cli.send import telegram_record
from awooop.contracts.registries.topics import Topics
from awooop.infra.settings import SERVICES, Settings, asyncpg_dsn
from awooop.security.signing_keys import generate_ed25519_keys
from support.infra import unique
from support.platform_procs import RunningPlatform, own_platform, process_environ

pytestmark = pytest.mark.e2e

PASSWORDS = {f"AWOOOP_DB_PASSWORD_{s.upper()}": f"pw-{s}-secret" for s in SERVICES}
SIGNING_KEY = "AWOOOP_CONTRACT_SIGNING_KEY"
KEYS = generate_ed25519_keys("e2e-contracts")
KEY = KEYS.signing_spec


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    extra = {
        **PASSWORDS,
        "AWOOOP_API_DB_PASSWORD": "pw-api-secret",
        SIGNING_KEY: KEY,
        # The contracts the metrics' tenant is onboarded with verify with its public key.
        "AWOOOP_CONTRACT_VERIFYING_KEYS": KEYS.verifying_spec,
    }
    with own_platform(tmp_path_factory.mktemp("processes") / "home", **extra) as platform:
        yield platform


def test_every_process_holds_only_its_own_credentials(running: RunningPlatform) -> None:
    admin_url = running.env["AWOOOP_DATABASE_URL"]
    seen = {name: process_environ(p.pid) for name, p in running.platform.processes.items()}
    assert sorted(seen) == sorted([*SERVICES, "api", "fake-chat"])
    fake_chat = seen.pop("fake-chat")
    assert not [k for k in fake_chat if k.startswith("AWOOOP_") and "LOG" not in k]
    assert admin_url not in "\0".join(fake_chat.values())
    for name, env in seen.items():
        tokens = {k for k in env if is_bot_token_variable(k)}
        assert bool(tokens) == (name == "ingress"), (name, tokens)
        assert "AWOOOP_DATABASE_URL" not in env, name
        assert admin_url not in "\0".join(env.values()), name
        own = "AWOOOP_API_DB_PASSWORD" if name == "api" else f"AWOOOP_DB_PASSWORD_{name.upper()}"
        held = {k for k in env if k.startswith("AWOOOP_DB_PASSWORD_") or k.endswith("DB_PASSWORD")}
        assert held == {own}, (name, held)
        assert (SIGNING_KEY in env) == (name == "approval"), name
        if name == "approval":
            assert env[SIGNING_KEY] == KEY
        else:
            assert KEY not in "\0".join(env.values()), name
        settings = Settings.from_env(env).without_admin()
        assert settings.database_url is None
        assert settings.postgres_url is not None
        assert "@" not in settings.postgres_url


def test_the_services_reach_the_embedded_postgres_over_its_unix_socket(
    running: RunningPlatform,
) -> None:
    """Every service logs in over the socket the embedded server makes in its data folder
    (decision 0070), its own role's password and all. Break caught: a role URL that
    loses the socket and quietly connects over TCP (a backend with a client address)."""
    admin_url = running.env["AWOOOP_DATABASE_URL"]
    assert "host=/" in admin_url, admin_url
    assert "127.0.0.1" not in admin_url, admin_url

    async def backends() -> list[tuple[str, str | None, int]]:
        conn = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            rows = await conn.fetch(
                "SELECT usename, host(client_addr) AS addr, client_port FROM pg_stat_activity "
                "WHERE usename LIKE 'awooop\\_%'"
            )
        finally:
            await conn.close()
        return [(r["usename"], r["addr"], r["client_port"]) for r in rows]

    seen = asyncio.run(backends())
    assert {f"awooop_{s}" for s in SERVICES} <= {user for user, _, _ in seen}, seen
    assert [row for row in seen if row[1] is not None or row[2] != -1] == []


# -- /metrics ----------------------------------------------------------------------------

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


async def test_metrics_of_every_service_move_under_load(running: RunningPlatform) -> None:
    project = unique("m")
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

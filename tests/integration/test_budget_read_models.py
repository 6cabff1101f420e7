"""Step, budget and outbound read models on the real broker and Postgres: the runtime's
events, produced to their own topics (a stretch redelivered), become exactly the rows the
pure fold gives, a rebuild equals them, and the query API serves a run's steps and
messages and each project's budget, one tenant never seeing another's."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id
from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres.tenant import set_tenants
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.api.app import create_app
from awooop.projector.app import spec
from awooop.projector.domain.checksums import checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.rebuild import Rebuild
from awooop.security.api_tokens import mint_api_token
from support.budget_envelopes import REPLY, BudgetStream, step, stepped_run
from support.contract_envelopes import RING, RING_SPEC, ContractStream
from support.infra import StackUrls, migrated, unique
from support.projector_checks import projector_past, send_in_order, stored_checksums

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
SECRET = "budget-read-model-test-secret-of-32-bytes"
AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NEW_TABLES = ("run_steps", "outbound_messages", "budget_state", "budget_trips")
BUDGET_BODY = {
    "family": "budget",
    "schema_version": 1,
    "limits": [
        {"scope": "tenant", "period": "monthly", "max_cost": "250.00"},
        {"scope": "agent", "agent_id": "demo", "period": "daily", "max_tokens": 5000},
    ],
    "prices": [{"model": "gpt-4o-mini", "input_per_million": "0.15", "output_per_million": "0.6"}],
    "currency": "USD",
    "kill_switch_at": "0.95",
}


@dataclass(frozen=True)
class Projected:
    tenant_a: str
    tenant_b: str
    run_a: str
    events: list[Envelope[Any]]
    """Every event sent, redelivered ones included."""


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    a, b = unique("ba"), unique("bb")
    demo_runs = [stepped_run(a, AT), stepped_run(a, AT.replace(hour=13))]
    triage = stepped_run(a, AT, agent="triage", steps=(step(0, 10, 1, "1.5"), step(1, 5, 5, "0")))
    earlier_month = stepped_run(a, datetime(2026, 2, 27, tzinfo=UTC))
    theirs = stepped_run(b, AT)
    budget_a, budget_b = BudgetStream(a, AT), BudgetStream(b, AT)
    budget_a.trip("daily", "2026-03-10")
    budget_a.trip("daily", "2026-03-09")
    budget_a.kill()
    budget_a.reset()
    budget_a.kill(reason="spent again")
    budget_b.kill()
    contract = ContractStream(a, "budget", family="budget")
    contract.draft(BUDGET_BODY)
    contract.publish(1)
    contract.sign(1, "alice")
    contract.activate(1, ("alice",))
    events = [*demo_runs[0], *demo_runs[1], *triage, *earlier_month, *theirs]
    events += [*budget_a.events, *budget_b.events, *contract.events]
    redelivered = [*demo_runs[0][2:], *budget_a.events[2:4]]
    settings = dataclasses.replace(kafka_ready.settings(), contract_verifying_keys=RING_SPEC)
    runner = ServiceRunner(spec(), settings)
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(settings.kafka, client_id="budget-read-model-test")
    await producer.start()
    try:
        sent = await send_in_order(producer, [*events, *redelivered])
        assert runner.pool is not None
        await projector_past(runner.pool, sent)
    finally:
        await producer.stop()
        await runner.stop()
    return Projected(a, b, demo_runs[0][0].correlation_id, [*events, *redelivered])


async def test_the_live_rows_are_the_fold_of_the_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    projects = {projected.tenant_a, projected.tenant_b}
    live = await stored_checksums(kafka_ready.database, projects)
    expected = checksums_of_rows(fold_batch(projected.events, RING))
    assert differences(live, expected) == []
    a = projected.tenant_a
    rows = {t: live.tables[t][a].rows for t in NEW_TABLES}
    assert rows == {"run_steps": 8, "outbound_messages": 4, "budget_state": 1, "budget_trips": 2}


async def test_a_rebuild_equals_the_live_rows(kafka_ready: StackUrls, projected: Projected) -> None:
    rebuild = Rebuild(KafkaSettings(kafka_ready.kafka), kafka_ready.database, workers=1, ring=RING)
    report = await rebuild.run(dry_run=True)
    mine = {projected.tenant_a, projected.tenant_b}
    ours = [d for d in report.differences if d.project_id in mine]
    assert ours == [], [d.describe("live", "rebuilt") for d in ours]


@pytest.fixture
async def client(kafka_ready: StackUrls) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(kafka_ready.settings(), api_jwt_secret=SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


def auth(*projects: str, roles: tuple[str, ...] = ("viewer",)) -> dict[str, str]:
    token = mint_api_token(SECRET, subject="operator", projects=projects, roles=roles)
    return {"Authorization": f"Bearer {token}"}


async def test_a_run_comes_with_its_steps_and_messages(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    answer = await client.get(f"/v1/runs/{projected.run_a}", headers=auth(projected.tenant_a))
    assert answer.status_code == 200
    body = answer.json()
    steps = body["steps"]
    assert [(s["number"], s["outcome"], s["cost"]) for s in steps] == [
        (0, "tool_call", "0.000069"),
        (1, "reply", "0.0000990"),
    ]
    assert (steps[1]["tokens_in"], steps[1]["tokens_out"], steps[1]["reserved_tokens"]) == (
        420,
        60,
        1444,
    )
    [message] = body["outbound"]
    assert (message["kind"], message["chat_id"], message["text"]) == ("final", "42", REPLY)
    line = next(e for e in body["timeline"] if e["event_type"] == "channel.outbound_requested")
    assert line["summary"]["text_length"] == len(REPLY)
    completed = next(e for e in body["timeline"] if e["event_type"] == "run.completed")
    assert completed["summary"]["step"]["number"] == 1


async def test_a_project_budget_shows_its_switch_usage_trips_and_limits(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    answer = await client.get(
        "/v1/budgets", params={"day": "2026-03-10"}, headers=auth(projected.tenant_a)
    )
    assert answer.status_code == 200
    [entry] = answer.json()["projects"]
    assert (entry["project_id"], entry["day"], entry["month"]) == (
        projected.tenant_a,
        "2026-03-10",
        "2026-03",
    )
    switch = entry["kill_switch"]
    assert (switch["killed"], switch["reason"], switch["code"]) == (
        True,
        "spent again",
        "E-BUDGET-KILLED",
    )
    usage = {(u["period"], u["agent_id"]): u for u in entry["usage"]}
    assert list(usage) == [
        ("daily", "demo"),
        ("daily", "triage"),
        ("monthly", "demo"),
        ("monthly", "triage"),
    ]
    demo_day = usage[("daily", "demo")]
    assert (demo_day["steps"], demo_day["tokens_in"], demo_day["tokens_out"]) == (4, 1440, 200)
    assert (demo_day["tokens"], demo_day["cost"]) == (1640, "0.0003360")
    assert usage[("monthly", "demo")]["steps"] == 4  # February's run counts elsewhere
    assert (usage[("daily", "triage")]["cost"], usage[("daily", "triage")]["tokens"]) == (
        "1.5",
        21,
    )
    assert [t["period_key"] for t in entry["tripped"]] == ["2026-03-10"]
    [budget] = entry["budgets"]
    assert (budget["contract_id"], budget["revision"], budget["signature_check"]) == (
        "budget",
        1,
        "valid",
    )
    assert [
        (x["scope"], x["agent_id"], x["max_tokens"], x["max_cost"]) for x in budget["limits"]
    ] == [
        ("tenant", None, None, "250.00"),
        ("agent", "demo", 5000, None),
    ]
    february = await client.get(
        "/v1/budgets", params={"day": "2026-02-27"}, headers=auth(projected.tenant_a)
    )
    [old] = february.json()["projects"]
    assert [(u["period"], u["steps"]) for u in old["usage"]] == [("daily", 2), ("monthly", 2)]


async def test_tenant_b_never_sees_tenant_a(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a, b = projected.tenant_a, projected.tenant_b
    theirs = await client.get(f"/v1/runs/{projected.run_a}", headers=auth(b))
    assert theirs.status_code == 404
    refused = await client.get("/v1/budgets", params={"project_id": a}, headers=auth(b))
    assert refused.status_code == 403
    [own] = (await client.get("/v1/budgets", params={"day": "2026-03-10"}, headers=auth(b))).json()[
        "projects"
    ]
    assert own["project_id"] == b
    assert [(u["agent_id"], u["steps"]) for u in own["usage"]] == [("demo", 2), ("demo", 2)]
    assert (own["kill_switch"]["killed"], own["tripped"], own["budgets"]) == (True, [], [])
    both = (await client.get("/v1/budgets", headers=auth(b, a))).json()["projects"]
    assert sorted(p["project_id"] for p in both) == sorted([a, b])
    operator = await client.get(
        "/v1/budgets", params={"project_id": a}, headers=auth(roles=("operator",))
    )
    assert [p["project_id"] for p in operator.json()["projects"]] == [a]


async def test_row_level_security_guards_the_new_tables(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    a, b = projected.tenant_a, projected.tenant_b
    api = await asyncpg.connect(
        asyncpg_dsn(kafka_ready.settings().api_database_url()),
        server_settings={"search_path": "projector"},
    )
    try:
        flags = await api.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = "
            "ANY($1::text[]) AND relnamespace = 'projector'::regnamespace",
            list(NEW_TABLES),
        )
        assert sorted(tuple(f) for f in flags) == sorted((t, True, True) for t in NEW_TABLES)
        for tenant, seen in ((b, 0), (a, 1)):
            async with api.transaction():
                await api.execute("SELECT set_config('app.project_id', $1, true)", tenant)
                for table in (*NEW_TABLES, "budget_usage"):
                    found = await api.fetchval(
                        f"SELECT count(*) > 0 FROM {table} WHERE project_id = $1", a
                    )
                    assert found == bool(seen), (table, tenant)
        assert await api.fetchval("SELECT count(*) FROM budget_usage") == 0  # no tenant set
    finally:
        await api.close()
    projector = await asyncpg.connect(
        asyncpg_dsn(kafka_ready.settings().service_database_url("projector")),
        server_settings={"search_path": "projector"},
    )
    try:
        async with projector.transaction():
            await set_tenants(projector, [b])
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await projector.execute(
                    "INSERT INTO budget_trips VALUES ($1, $2, 'k', 'tenant', 'daily', 'd', 'r', "
                    "now())",
                    a,
                    new_event_id(),
                )
    finally:
        await projector.close()

"""Tool calls on the real broker and Postgres: the runtime's requests and the gateway's
word on each, produced to their own topics with the gateway's first (a stretch
redelivered), become exactly the `mcp_calls` rows the pure fold gives; a rebuild equals
them; the query API lists them with every column, filters and caps the listing, shows a
run's calls in its detail, and shows one tenant nothing of another; no argument as the
agent produced it is kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.app import spec
from awooop.projector.domain.checksums import checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.rebuild import Rebuild
from support.contract_envelopes import RING
from support.infra import StackUrls, migrated, unique
from support.mcp_call_envelopes import (
    CARD,
    EMAIL,
    INVALID,
    TOOL_REVISION,
    Event,
    McpCallTraffic,
    every_status,
)
from support.projector_checks import projector_past, send_in_order, stored_checksums
from support.query_api import api_client, viewer

pytestmark = pytest.mark.integration

SECRET = "mcp-call-read-model-test-secret-of-32-bytes"
AT = dt.datetime(2026, 5, 4, 11, 0, tzinfo=dt.UTC)
SECRETS = (EMAIL, CARD, "4111111111111111")


@dataclass(frozen=True)
class Projected:
    tenant_a: str
    tenant_b: str
    run_a: str
    run_b: str
    named: dict[str, Event]
    events: list[Event]
    """Every event sent, redelivered ones included."""

    def call_id(self, name: str) -> str:
        call_id: str = self.named[name].payload.call_id
        return call_id


def _traffic(t: McpCallTraffic) -> dict[str, Event]:
    n = every_status(t)
    n["late"] = t.requested("restart__demo", {"service": "mail"})
    n["late_asked"] = t.approval_required(n["late"], reason="restarts need an approval")
    n["late_done"] = t.blocked(
        n["late"], gate=5, code="E-MCP-GATE-008", reason="the approval expired"
    )
    return n


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    a, b = unique("ma"), unique("mb")
    mine, theirs = McpCallTraffic(a, AT), McpCallTraffic(b, AT)
    named = _traffic(mine)
    named["theirs"] = theirs.requested("status__demo", {"service": "checkout"})
    named["theirs_done"] = theirs.succeeded(named["theirs"], result={"status": "green"})
    events = [*mine.events, *theirs.events]
    # Three waves, each projected before the next, so the SQL merge meets every order:
    # outcomes before their request, an approval before and after its outcome, and a
    # stretch redelivered.
    gateway = [e for e in events if e.event_type.startswith("gateway.")]
    third = [named[k] for k in ("held_done", "waiting_asked", "late_asked", "theirs_done")]
    waves = [
        [e for e in gateway if e not in third],
        [e for e in events if e not in gateway],
        [*third, named["held_asked"], named["ok"], named["bad_refused"]],
    ]
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(kafka_ready.settings().kafka, client_id="mcp-call-model-test")
    await producer.start()
    try:
        assert runner.pool is not None
        for wave in waves:
            await projector_past(runner.pool, await send_in_order(producer, wave))
    finally:
        await producer.stop()
        await runner.stop()
    return Projected(a, b, str(mine.run_id), str(theirs.run_id), named, events)


async def test_the_live_rows_are_the_fold_of_the_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    live = await stored_checksums(kafka_ready.database, {projected.tenant_a, projected.tenant_b})
    expected = checksums_of_rows(fold_batch(projected.events))
    assert differences(live, expected) == []
    assert live.tables["mcp_calls"][projected.tenant_a].rows == 8
    assert live.tables["mcp_calls"][projected.tenant_b].rows == 1


async def test_a_rebuild_equals_the_live_rows(kafka_ready: StackUrls, projected: Projected) -> None:
    rebuild = Rebuild(KafkaSettings(kafka_ready.kafka), kafka_ready.database, workers=1, ring=RING)
    report = await rebuild.run(dry_run=True)
    mine = {projected.tenant_a, projected.tenant_b}
    ours = [d for d in report.differences if d.project_id in mine]
    assert ours == [], [d.describe("live", "rebuilt") for d in ours]


async def test_no_argument_as_produced_is_kept(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(kafka_ready.database))
    try:
        for table in ("mcp_calls", "timeline"):
            query = f"SELECT t::text AS row FROM projector.{table} t WHERE project_id = $1"
            rows = [r["row"] for r in await conn.fetch(query, projected.tenant_a)]
            assert rows, table
            for secret in SECRETS:
                assert not [row for row in rows if secret in row], (table, secret)
        marked = await conn.fetchval(
            "SELECT count(*) FROM projector.mcp_calls WHERE project_id = $1 "
            "AND arguments::text LIKE '%[REDACTED:%'",
            projected.tenant_a,
        )
        assert marked == 2
    finally:
        await conn.close()


@pytest.fixture
async def client(kafka_ready: StackUrls) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(kafka_ready.settings(), SECRET) as http:
        yield http


def auth(*projects: str) -> dict[str, str]:
    return viewer(SECRET, *projects)


async def _calls(client: httpx.AsyncClient, project: str, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/v1/mcp-calls", params=params, headers=auth(project))
    assert answer.status_code == 200, answer.text
    calls: list[dict[str, Any]] = answer.json()["items"]
    return calls


async def test_every_status_is_listed_with_its_fields(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    n, p = projected.named, projected
    calls = {c["call_id"]: c for c in await _calls(client, p.tenant_a)}
    assert len(calls) == 8
    ok = calls[p.call_id("ok")]
    assert (ok["status"], ok["tool"], ok["run_id"], ok["latency_ms"]) == (
        "succeeded",
        "status__demo",
        p.run_a,
        42.0,
    )
    assert ok["arguments"] == {"service": "checkout", "notify": "[REDACTED:email]"}
    assert (ok["redactions"], ok["revisions"]) == ({"email": 1}, [TOOL_REVISION])
    assert ok["argument_hash"] == n["ok_done"].payload.argument_hash
    assert ok["decided_event_id"] == str(n["ok_done"].event_id)
    assert (ok["requested_at"], ok["decided_at"]) == (
        n["ok"].occurred_at.isoformat().replace("+00:00", "Z"),
        n["ok_done"].occurred_at.isoformat().replace("+00:00", "Z"),
    )
    held = calls[p.call_id("held")]
    assert (held["status"], held["action_hash"]) == (
        "succeeded",
        n["held_asked"].payload.action_hash,
    )
    bad = calls[p.call_id("bad")]
    assert (bad["status"], bad["gate"], bad["code"], bad["reason"]) == (
        "blocked",
        3,
        "E-MCP-GATE-004",
        INVALID,
    )
    busy = calls[p.call_id("busy")]
    assert (busy["gate"], busy["retry_after"], busy["would_need"]) == (4, 1.5, None)
    down = calls[p.call_id("down")]
    assert (down["status"], down["transient"], down["code"]) == (
        "failed",
        True,
        "E-MCP-CALL-FAILED",
    )
    assert down["reason"] == "ConnectionRefusedError: mail [REDACTED:email]"
    waiting = calls[p.call_id("waiting")]
    assert (waiting["status"], waiting["action_hash"]) == (
        "awaiting_approval",
        n["waiting_asked"].payload.action_hash,
    )
    asked = calls[p.call_id("asked")]
    assert (asked["status"], asked["arguments"], asked["decided_at"]) == ("requested", None, None)
    late = calls[p.call_id("late")]
    assert (late["status"], late["gate"], late["reason"], late["action_hash"]) == (
        "blocked",
        5,
        "the approval expired",
        n["late_asked"].payload.action_hash,
    )


async def test_the_listing_is_newest_first_and_capped(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a = projected.tenant_a
    every = await _calls(client, a)
    assert every[0]["call_id"] == projected.call_id("late")
    keys = [(c["requested_at"], c["call_id"]) for c in every]
    assert keys == sorted(keys, reverse=True)
    assert [c["call_id"] for c in await _calls(client, a, limit=2)] == [
        c["call_id"] for c in every[:2]
    ]
    for wrong in (
        {"limit": 501},
        {"limit": 0},
        {"status": "lost"},
        {"gate": 6},
        {"gate": "one"},
        {"code": "gate-4"},
        {"run_id": "not-a-run"},
        {"tool": ""},
        {"tool": "x\x00"},
    ):
        answer = await client.get("/v1/mcp-calls", params=wrong, headers=auth(a))
        assert answer.status_code == 422, wrong
        assert answer.json()["detail"][0]["loc"][-1] == next(iter(wrong)), answer.json()
    assert len(await _calls(client, a, limit=500)) == 8


async def test_the_listing_filters(client: httpx.AsyncClient, projected: Projected) -> None:
    a, p = projected.tenant_a, projected

    async def ids(**params: Any) -> set[str]:
        return {c["call_id"] for c in await _calls(client, a, **params)}

    def named(*names: str) -> set[str]:
        return {p.call_id(name) for name in names}

    assert await ids(status="blocked") == named("bad", "busy", "late")
    assert await ids(status="awaiting_approval") == named("waiting")
    assert await ids(status="requested") == named("asked")
    assert await ids(tool="restart__demo") == named("held", "waiting", "late")
    assert await ids(tool="restart__demo", status="succeeded") == named("held")
    assert await ids(gate=4) == named("busy")
    assert await ids(code="E-MCP-GATE-004") == named("bad")
    assert await ids(run_id=p.run_a) == named(
        "ok", "held", "bad", "busy", "down", "waiting", "asked", "late"
    )
    assert await ids(run_id=p.run_b) == set()
    assert await ids(tool="status__demo%") == set()


async def test_a_run_shows_its_tool_calls(client: httpx.AsyncClient, projected: Projected) -> None:
    p = projected
    answer = await client.get(f"/v1/runs/{p.run_a}", headers=auth(p.tenant_a))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    order = ["ok", "held", "bad", "busy", "down", "waiting", "asked", "late"]
    assert [c["call_id"] for c in body["mcp_calls"]] == [p.call_id(name) for name in order]
    assert body["mcp_calls"][2]["gate"] == 3
    lines = {e["event_type"]: e["summary"]["text"] for e in body["timeline"]}
    assert lines["gateway.tool_call_failed"] == (
        "tool status__demo failed after 3.0 ms (E-MCP-CALL-FAILED, transient): "
        "ConnectionRefusedError: mail [REDACTED:email]"
    )


async def test_another_tenant_sees_none_of_them(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a, b = projected.tenant_a, projected.tenant_b
    theirs = await _calls(client, b)
    assert [c["call_id"] for c in theirs] == [projected.call_id("theirs")]
    assert await _calls(client, b, run_id=projected.run_a) == []
    assert await _calls(client, b, status="blocked") == []
    refused = await client.get("/v1/mcp-calls", params={"project_id": a}, headers=auth(b))
    assert refused.status_code == 403
    assert (await client.get("/v1/mcp-calls")).status_code == 401
    assert (await client.get(f"/v1/runs/{projected.run_a}", headers=auth(b))).status_code == 404


async def test_row_level_security_guards_mcp_calls(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    api = await asyncpg.connect(
        asyncpg_dsn(kafka_ready.settings().api_database_url()),
        server_settings={"search_path": "projector"},
    )
    try:
        flags = await api.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = "
            "'mcp_calls' AND relnamespace = 'projector'::regnamespace"
        )
        assert tuple(flags) == (True, True)
        assert await api.fetchval("SELECT count(*) FROM mcp_calls") == 0  # no tenant set
        async with api.transaction():
            await api.execute("SELECT set_config('app.project_id', $1, true)", projected.tenant_b)
            mine = "SELECT count(*) FROM mcp_calls WHERE project_id = $1"
            assert await api.fetchval(mine, projected.tenant_a) == 0
            assert await api.fetchval("SELECT count(*) FROM mcp_calls") == 1
    finally:
        await api.close()

"""Approvals on the real broker and Postgres: two tenants' held calls, the approval
service's requests, votes, grants and denials on `awooop.approval.events.v1` (decisions
produced before their requests, a stretch redelivered) become exactly the `approvals`
rows the pure fold gives; a rebuild equals them and every tenant-facing table is
checksummed; no table keeps the grant's token. Each tenant's viewer reads only its own
requests from `GET /v1/approvals` (pending, granted, by run, page by page) and
`GET /v1/approvals/{id}`, the run detail lists them and its timeline says what happened,
and `awooop approvals list` prints them from the query API over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from awooop.cli.main import main
from awooop.infra.embedded.processes import free_port
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import row_level_secured_tables
from awooop.projector.api.app import create_app
from awooop.projector.app import spec
from awooop.projector.domain.checksums import READ_MODEL_TABLES, checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.rebuild import Rebuild
from support.approval_envelopes import (
    TOKEN,
    TOKEN_SIGNATURE,
    ApprovalTraffic,
    approvals_of_a_run,
    token_id_of,
)
from support.contract_envelopes import RING
from support.infra import StackUrls, migrated, unique
from support.mcp_call_envelopes import Event
from support.projector_checks import projector_past, send_in_order, stored_checksums
from support.query_api import api_client, viewer

pytestmark = pytest.mark.integration

SECRET = "approvals-read-model-test-secret-of-32-bytes"
AT = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Tenant:
    project: str
    run_id: str
    named: dict[str, Event]

    def approval_id(self, name: str) -> str:
        return str(self.named[name].payload.approval_id)


@dataclass(frozen=True)
class Projected:
    a: Tenant
    b: Tenant
    events: list[Event]
    """Every event sent, redelivered ones included."""


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    mine, theirs = ApprovalTraffic(unique("apa"), AT), ApprovalTraffic(unique("apb"), AT)
    a = Tenant(mine.project, str(mine.run_id), approvals_of_a_run(mine))
    b = Tenant(theirs.project, str(theirs.run_id), approvals_of_a_run(theirs))
    events = [*mine.events, *theirs.events]
    # Three waves, each projected before the next, so the SQL merge meets its orders:
    # votes and decisions before their requests, then the rest, then a stretch of the
    # approval stream redelivered.
    requests = [e for e in events if e.event_type == "approval.requested"]
    early = [e for e in events if e.event_type.startswith("approval.") and e not in requests]
    redelivered = [*requests[:2], a.named["alice"], a.named["requester"], a.named["drop_denied"]]
    waves = [early, [e for e in events if e not in early], redelivered]
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(kafka_ready.settings().kafka, client_id="approvals-model-test")
    await producer.start()
    try:
        assert runner.pool is not None
        for wave in waves:
            await projector_past(runner.pool, await send_in_order(producer, wave))
    finally:
        await producer.stop()
        await runner.stop()
    return Projected(a, b, [*events, *redelivered])


async def test_the_live_rows_are_the_fold_of_the_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    projects = {projected.a.project, projected.b.project}
    live = await stored_checksums(kafka_ready.database, projects)
    expected = checksums_of_rows(fold_batch(projected.events))
    assert differences(live, expected) == []
    for project in projects:
        assert live.tables["approvals"][project].rows == 3
        assert live.tables["mcp_calls"][project].rows == 3


async def test_a_rebuild_equals_the_live_rows_and_checksums_every_tenant_table(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    rebuild = Rebuild(KafkaSettings(kafka_ready.kafka), kafka_ready.database, workers=1, ring=RING)
    report = await rebuild.run(dry_run=True)
    mine = {projected.a.project, projected.b.project}
    ours = [d for d in report.differences if d.project_id in mine]
    assert ours == [], [d.describe("live", "rebuilt") for d in ours]
    conn = await asyncpg.connect(asyncpg_dsn(kafka_ready.database))
    try:
        assert await row_level_secured_tables(conn, "projector") == set(READ_MODEL_TABLES)
        assert "approvals" in READ_MODEL_TABLES
    finally:
        await conn.close()


async def test_the_rebuild_check_sees_a_wrong_approval_row(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    projects = {projected.a.project, projected.b.project}
    live = await stored_checksums(kafka_ready.database, projects)
    rows = fold_batch(projected.events)
    wrong = [replace(r, votes=r.votes[:-1]) if r.votes else r for r in rows.approvals]
    found = differences(live, checksums_of_rows(replace(rows, approvals=wrong)))
    assert {(d.table, d.project_id) for d in found} == {("approvals", p) for p in projects}


async def test_no_table_keeps_the_token(kafka_ready: StackUrls, projected: Projected) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(kafka_ready.database))
    try:
        for table in READ_MODEL_TABLES:
            query = f"SELECT t::text AS row FROM projector.{table} t WHERE project_id = ANY($1)"
            rows = [
                r["row"]
                for r in await conn.fetch(query, [projected.a.project, projected.b.project])
            ]
            for secret in (TOKEN, TOKEN_SIGNATURE):
                assert not [row for row in rows if secret in row], table
        token_ids = await conn.fetchval(
            "SELECT array_agg(token_id) FROM projector.approvals WHERE project_id = $1 "
            "AND state = 'granted'",
            projected.a.project,
        )
        assert token_ids == [token_id_of(projected.a.named["restart_asked"].payload.approval_id)]
    finally:
        await conn.close()


@pytest.fixture
async def client(kafka_ready: StackUrls) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(kafka_ready.settings(), SECRET) as http:
        yield http


async def _listed(
    client: httpx.AsyncClient, project: str, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    answer = await client.get("/v1/approvals", params=params, headers=viewer(SECRET, project))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body["items"], body["next"]


async def test_each_tenant_s_viewer_sees_only_its_own_pending_requests(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    for tenant in (projected.a, projected.b):
        pending, following = await _listed(client, tenant.project, state="pending")
        assert [p["approval_id"] for p in pending] == [tenant.approval_id("scale_asked")]
        assert following is None
        [scale] = pending
        assert (scale["run_id"], scale["tool"], scale["approvals"], scale["approvers"]) == (
            tenant.run_id,
            "scale__demo",
            1,
            ["alice", "bob"],
        )
        assert scale["arguments"] == {"service": "web", "replicas": 3}
        assert [v["approver_id"] for v in scale["votes"]] == ["bob"]
    a, b = projected.a, projected.b
    refused = await client.get(
        "/v1/approvals", params={"project_id": a.project}, headers=viewer(SECRET, b.project)
    )
    assert refused.status_code == 403
    assert (await client.get("/v1/approvals")).status_code == 401
    assert await _listed(client, b.project, run_id=a.run_id) == ([], None)
    theirs = await client.get(
        f"/v1/approvals/{a.approval_id('restart_asked')}", headers=viewer(SECRET, b.project)
    )
    assert theirs.status_code == 404


async def test_a_request_shows_its_votes_and_how_it_ended(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a = projected.a
    answer = await client.get(
        f"/v1/approvals/{a.approval_id('restart_asked')}", headers=viewer(SECRET, a.project)
    )
    assert answer.status_code == 200, answer.text
    granted = answer.json()
    assert (granted["state"], granted["decided_by"], granted["approvals"]) == (
        "granted",
        ["alice", "bob"],
        2,
    )
    assert granted["token_id"] == token_id_of(a.named["restart_asked"].payload.approval_id)
    assert "token" not in granted
    assert [(v["approver_id"], v["counted"], v["code"]) for v in granted["votes"]] == [
        ("alice", True, None),
        (None, False, "E-APPROVAL-REQUESTER"),
        ("bob", True, None),
    ]
    assert granted["arguments"] == {"service": "cache", "notify": "[REDACTED:email]"}
    [denied], _ = await _listed(client, a.project, state="denied")
    assert (denied["outcome_code"], denied["outcome_reason"], denied["rejections"]) == (
        "E-APPROVAL-REJECTED",
        "rejected by carol, alice",
        2,
    )
    assert (denied["token_id"], denied["token_expires_at"]) == (None, None)


async def test_the_listing_pages_newest_first_and_refuses_a_foreign_cursor(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a = projected.a
    every, following = await _listed(client, a.project)
    assert following is None
    order = ["scale_asked", "drop_asked", "restart_asked"]
    assert [r["approval_id"] for r in every] == [a.approval_id(name) for name in order]
    paged: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page, cursor = await _listed(client, a.project, **params)
        paged += [r["approval_id"] for r in page]
        if cursor is None:
            break
    assert paged == [r["approval_id"] for r in every]
    assert [r["state"] for r in (await _listed(client, a.project, state="granted"))[0]] == [
        "granted"
    ]
    auth = viewer(SECRET, a.project)
    bad = await client.get("/v1/approvals", params={"cursor": "abc"}, headers=auth)
    assert bad.status_code == 400
    for wrong in ({"state": "lost"}, {"run_id": "x"}, {"limit": 0}, {"limit": 201}):
        answer = await client.get("/v1/approvals", params=wrong, headers=auth)
        assert answer.status_code == 422, wrong


async def test_the_run_detail_lists_its_approvals_and_its_timeline_says_what_happened(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    a = projected.a
    answer = await client.get(f"/v1/runs/{a.run_id}", headers=viewer(SECRET, a.project))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    order = ["restart_asked", "drop_asked", "scale_asked"]
    assert [r["approval_id"] for r in body["approvals"]] == [a.approval_id(n) for n in order]
    assert [r["state"] for r in body["approvals"]] == ["granted", "denied", "pending"]
    lines = {e["event_id"]: e["summary"]["text"] for e in body["timeline"]}
    call = a.named["restart"].payload.call_id
    assert lines[str(a.named["restart_approved"].event_id)] == (
        f"approved: the gateway runs {call}"
    )
    assert lines[str(a.named["bob"].event_id)] == (
        "bob approved via api: counted (2 approving, 0 rejecting)"
    )
    assert lines[str(a.named["drop_denied"].event_id)].startswith(
        "approval denied by carol, alice (E-APPROVAL-REJECTED)"
    )
    assert TOKEN not in answer.text
    calls = {c["call_id"]: c for c in body["mcp_calls"]}
    assert (calls[call]["status"], calls[call]["retries"]) == ("succeeded", 1)
    drop = calls[a.named["drop"].payload.call_id]
    assert (drop["status"], drop["gate"], drop["code"]) == ("blocked", 5, "E-APPROVAL-REJECTED")


async def test_the_cli_lists_them_from_the_query_api(
    kafka_ready: StackUrls,
    projected: Projected,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = replace(kafka_ready.settings(), api_jwt_secret=SECRET)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    monkeypatch.setenv("AWOOOP_API_JWT_SECRET", SECRET)
    monkeypatch.setenv("AWOOOP_API_URL", f"http://127.0.0.1:{port}")
    try:
        while not server.started:
            assert not serving.done(), "the query API did not start"
            await asyncio.sleep(0.05)
        a, b = projected.a, projected.b
        argv = ["approvals", "list", "--project", a.project, "--state", "pending"]
        assert await asyncio.to_thread(main, argv) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 2
        assert out[0].startswith("REQUESTED")
        assert "pending  scale__demo" in out[1]
        assert a.approval_id("scale_asked") in out[1]
        assert await asyncio.to_thread(main, ["approvals", "list", "--project", b.project]) == 0
        theirs = capsys.readouterr().out
        assert b.approval_id("restart_asked") in theirs
        assert a.approval_id("restart_asked") not in theirs
        assert len(theirs.splitlines()) == 4
    finally:
        server.should_exit = True
        await serving

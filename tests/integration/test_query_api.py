"""The query API over projected rows, in-process: bearer tokens, tenant choice, row-level
security (one tenant never sees another's runs), pagination and the run timeline."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from awooop.contracts.events.payloads.gateway import ToolCallSucceeded
from awooop.contracts.events.payloads.ingress import MessageReceived
from awooop.contracts.events.payloads.run import RunCompleted, RunStarted, ToolCallRequested
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope, new_event_id, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.projector.api.app import create_app
from awooop.projector.app import spec
from awooop.security.api_tokens import mint_api_token
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
SECRET = "query-api-test-secret-of-32-bytes-or-more"
BASE = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Projected:
    tenant_a: str
    tenant_b: str
    runs_a: list[str]  # newest first, as the listing must return them
    full_run_a: str
    full_run_events: list[Envelope[Any]]
    unstarted_a: str
    run_b: str


def _event(project: str, run_id: str, payload: Any, at: datetime, stream: tuple[str, int]) -> Any:
    return new_envelope(
        payload,
        occurred_at=at,
        project_id=project,
        stream_type=stream[0],
        stream_id=run_id if stream[0] == "run" else f"{run_id}:1",
        stream_seq=stream[1],
        trace_id=new_trace_id(),
        correlation_id=run_id,
        actor="service:test",
        producer="test",
        event_id=uuid.UUID(run_id) if stream[0] == "inbound" else None,
    )


def build_run(project: str, at: datetime, *, started: bool = True) -> list[Envelope[Any]]:
    ingress_id = new_event_id()
    run_id, subject = str(ingress_id), f"{project}:slack:U1"
    events = [
        _event(
            project,
            run_id,
            MessageReceived(
                channel_type="slack",
                provider_event_id=f"Ev{ingress_id.hex[-12:]}",
                platform_subject_id=subject,
                chat_id="C1",
                text=f"hello from {project}",
                display_text=f"hello from {project}",
                received_at=at,
                agent_id="demo-agent",
                revisions=(),
            ),
            at,
            ("inbound", 1),
        )
    ]
    if not started:
        return events
    call_id = f"{run_id}:1"
    events += [
        _event(
            project,
            run_id,
            RunStarted(
                agent_id="demo",
                channel_type="slack",
                chat_id="C1",
                platform_subject_id=subject,
                trigger_event_id=ingress_id,
                mode="shadow",
                revisions=("demo-agent@1:0123456789ab",),
                agent_revision="demo-agent@1:0123456789ab",
            ),
            at + timedelta(seconds=1),
            ("run", 1),
        ),
        _event(
            project,
            run_id,
            ToolCallRequested(
                call_id=call_id,
                tool="status__demo",
                arguments={},
                execute_before=at + timedelta(minutes=1),
                revisions=("demo-agent@1:0123456789ab",),
            ),
            at + timedelta(seconds=2),
            ("run", 2),
        ),
        _event(
            project,
            run_id,
            ToolCallSucceeded(
                call_id=call_id, result="ok", revisions=("demo-agent@1:0123456789ab",)
            ),
            at + timedelta(seconds=3),
            ("tool_call", 1),
        ),
        _event(
            project,
            run_id,
            RunCompleted(reply="done", suppressed=True),
            at + timedelta(seconds=4),
            ("run", 3),
        ),
    ]
    return events


async def _send(producer: AIOKafkaProducer, envelopes: Sequence[Envelope[Any]]) -> None:
    for env in envelopes:
        if env.event_type.startswith("ingress."):
            topic = Topics.INGRESS_EVENTS.name
            key = f"{env.project_id}:{env.payload.platform_subject_id}"
        else:
            topic = (
                Topics.RUN_EVENTS if env.event_type.startswith("run.") else Topics.GATEWAY_EVENTS
            ).name
            key = env.correlation_id
        headers = record_headers(env, make_traceparent(env.trace_id))
        await producer.send_and_wait(topic, CODEC.encode(env), key=key.encode(), headers=headers)


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    a, b = unique("qa"), unique("qb")
    # Five started runs of tenant A, two of them starting at the same instant (the run id
    # breaks the tie), one message of A that started no run, and one run of tenant B.
    starts = [BASE, BASE + timedelta(minutes=1), BASE + timedelta(minutes=2)]
    starts += [BASE + timedelta(minutes=3)] * 2
    runs_a = [build_run(a, at) for at in starts]
    unstarted = build_run(a, BASE + timedelta(minutes=9), started=False)
    run_b = build_run(b, BASE + timedelta(minutes=5))
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(kafka_ready.settings().kafka, client_id="query-api-test")
    await producer.start()
    try:
        for events in [*runs_a, unstarted, run_b]:
            await _send(producer, events)
        assert runner.pool is not None
        pool = runner.pool

        async def all_projected() -> bool:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT set_config('app.project_ids', $1, true)", f"{a},{b}")
                counts = await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE state = 'completed') AS done, "
                    "(SELECT count(*) FROM timeline) AS events FROM runs"
                )
            return (counts["done"], counts["events"]) == (6, 31)

        await wait_for(all_projected, within=60, message="tenants A and B projected")
    finally:
        await producer.stop()
        await runner.stop()
    ordered = sorted(
        runs_a, key=lambda events: (events[1].occurred_at, uuid.UUID(events[0].correlation_id))
    )
    return Projected(
        tenant_a=a,
        tenant_b=b,
        runs_a=[events[0].correlation_id for events in reversed(ordered)],
        full_run_a=runs_a[0][0].correlation_id,
        full_run_events=runs_a[0],
        unstarted_a=unstarted[0].correlation_id,
        run_b=run_b[0].correlation_id,
    )


@pytest.fixture
async def client(kafka_ready: StackUrls) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(kafka_ready.settings(), api_jwt_secret=SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


def auth(*projects: str, secret: str = SECRET) -> dict[str, str]:
    token = mint_api_token(secret, subject="operator", projects=projects, roles=["viewer"])
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_is_required_and_must_verify(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    for path in ("/v1/runs", f"/v1/runs/{projected.full_run_a}"):
        missing = await client.get(path)
        assert missing.status_code == 401
        assert missing.json()["detail"].startswith("a bearer token is required")
        forged = await client.get(path, headers=auth(projected.tenant_a, secret="z" * 40))
        assert forged.status_code == 401
        assert "signature" in forged.json()["detail"]


async def test_a_malformed_run_id_is_422(client: httpx.AsyncClient, projected: Projected) -> None:
    answer = await client.get("/v1/runs/not-a-uuid", headers=auth(projected.tenant_a))
    assert answer.status_code == 422


async def test_a_run_of_another_tenant_or_of_nobody_is_404(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    theirs = await client.get(f"/v1/runs/{projected.full_run_a}", headers=auth(projected.tenant_b))
    assert theirs.status_code == 404
    assert "not found" in theirs.json()["detail"]
    both = auth(projected.tenant_a, projected.tenant_b)
    chosen_b = await client.get(
        f"/v1/runs/{projected.full_run_a}", params={"project_id": projected.tenant_b}, headers=both
    )
    assert chosen_b.status_code == 404
    nobody = await client.get(f"/v1/runs/{uuid.uuid4()}", headers=auth(projected.tenant_a))
    assert nobody.status_code == 404


async def test_tenant_b_never_sees_tenant_a(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    listing = await client.get("/v1/runs", headers=auth(projected.tenant_b))
    assert listing.status_code == 200
    runs = listing.json()["runs"]
    assert [r["run_id"] for r in runs] == [projected.run_b]
    assert {r["project_id"] for r in runs} == {projected.tenant_b}
    for run_id in [*projected.runs_a, projected.unstarted_a]:
        answer = await client.get(f"/v1/runs/{run_id}", headers=auth(projected.tenant_b))
        assert answer.status_code == 404
    own = await client.get(f"/v1/runs/{projected.run_b}", headers=auth(projected.tenant_b))
    assert own.status_code == 200
    assert {e["event_type"] for e in own.json()["timeline"]} >= {"run.started"}


async def test_project_id_is_chosen_from_the_token(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    both = auth(projected.tenant_a, projected.tenant_b)
    unchosen = await client.get("/v1/runs", headers=both)
    assert unchosen.status_code == 400
    assert "project_id is required" in unchosen.json()["detail"]
    foreign = unique("qc")
    refused = await client.get("/v1/runs", params={"project_id": foreign}, headers=both)
    assert refused.status_code == 403
    assert foreign in refused.json()["detail"]
    not_granted = await client.get(
        "/v1/runs", params={"project_id": projected.tenant_b}, headers=auth(projected.tenant_a)
    )
    assert not_granted.status_code == 403
    chosen = await client.get("/v1/runs", params={"project_id": projected.tenant_a}, headers=both)
    assert chosen.status_code == 200
    assert [r["run_id"] for r in chosen.json()["runs"]] == projected.runs_a


async def test_the_listing_pages_newest_first(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    headers = auth(projected.tenant_a)
    seen: list[str] = []
    pages: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        answer = await client.get("/v1/runs", params=params, headers=headers)
        assert answer.status_code == 200
        body = answer.json()
        pages.append(len(body["runs"]))
        seen += [r["run_id"] for r in body["runs"]]
        if body["next"] is None:
            break
        params = {"limit": 2, "cursor": body["next"]}
    assert pages == [2, 2, 1]
    assert seen == projected.runs_a  # the message that started no run is not listed
    whole = await client.get("/v1/runs", headers=headers)
    assert [r["run_id"] for r in whole.json()["runs"]] == projected.runs_a
    assert whole.json()["next"] is None
    started = [r["started_at"] for r in whole.json()["runs"]]
    assert started == sorted(started, reverse=True)
    for limit in (0, 201):
        wrong = await client.get("/v1/runs", params={"limit": limit}, headers=headers)
        assert wrong.status_code == 422
    bad_cursor = await client.get("/v1/runs", params={"cursor": "not-ours"}, headers=headers)
    assert bad_cursor.status_code == 400
    assert "cursor" in bad_cursor.json()["detail"]


async def test_a_run_comes_with_its_timeline_in_order(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    answer = await client.get(f"/v1/runs/{projected.full_run_a}", headers=auth(projected.tenant_a))
    assert answer.status_code == 200
    body = answer.json()
    run = body["run"]
    assert (run["run_id"], run["project_id"], run["state"]) == (
        projected.full_run_a,
        projected.tenant_a,
        "completed",
    )
    assert (run["reply"], run["suppressed"], run["agent_id"], run["last_stream_seq"]) == (
        "done",
        True,
        "demo",
        3,
    )
    assert run["trigger_text"] == f"hello from {projected.tenant_a}"
    events = projected.full_run_events
    assert [e["event_id"] for e in body["timeline"]] == [str(e.event_id) for e in events]
    assert [e["event_type"] for e in body["timeline"]] == [e.event_type for e in events]
    assert body["timeline"][1]["summary"]["agent_id"] == "demo"


async def test_a_message_that_started_no_run_is_found_by_id_without_a_state(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    answer = await client.get(f"/v1/runs/{projected.unstarted_a}", headers=auth(projected.tenant_a))
    assert answer.status_code == 200
    run = answer.json()["run"]
    assert (run["state"], run["started_at"], run["trigger_text"]) == (
        None,
        None,
        f"hello from {projected.tenant_a}",
    )
    assert [e["event_type"] for e in answer.json()["timeline"]] == ["ingress.message_received"]

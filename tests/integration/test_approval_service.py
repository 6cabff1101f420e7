"""The approval service on the shared stack: requests from held calls, votes by chat
button and over HTTP, k of n distinct approvers, the expiry, racing deciders.

The service runs in this process (`ServiceRunner(spec(), settings)`: its consumer and
its expiry job); its HTTP API is served in process over the runner's pool. The events
it appends are read back from `awooop.approval.events.v1`, where the runtime and the
projector read them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from awooop.approval.api.app import create_api
from awooop.approval.app import spec, token_minter
from awooop.contracts.events.payloads.approval import approval_id_of, button_value
from awooop.contracts.records.envelope import Envelope, new_event_id
from awooop.contracts.registries.errors import (
    E_APPROVAL_DECIDED,
    E_APPROVAL_DUPLICATE,
    E_APPROVAL_EXPIRED,
    E_APPROVAL_NOT_APPROVER,
    E_APPROVAL_REQUESTER,
    E_APPROVAL_UNKNOWN,
)
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.postgres.pools import create_pool
from awooop.infra.runner import ServiceRunner
from awooop.security.api_tokens import mint_api_token
from awooop.security.approval_tokens import ApprovalTokenVerifier, check_binding
from awooop.security.signing_keys import KeyRing, SigningKey, generate_ed25519_keys
from support.approval_inputs import button, held_call, run_cancelled, run_started, send
from support.contracts import agent_body, publish_contracts
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

KEYS = generate_ed25519_keys("approvals-it")
RING = KeyRing.from_spec(KEYS.verifying_spec)
API_SECRET = "approval-service-test-secret-0123456789"
PROJECT = unique("apv")
OTHER = unique("apo")
RACE = unique("apr")
REQUESTER = "100"


def policy(project: str, k: int) -> dict[str, Any]:
    return {
        "family": "policy",
        "schema_version": 1,
        "mode": "suggest",
        "approvers": [
            {
                "approver_id": "carol",
                "chat_subjects": [f"{project}:telegram:{REQUESTER}"],
                "api_subject": "sso:carol",
            },
            {
                "approver_id": "alice",
                "chat_subjects": [f"{project}:telegram:201"],
                "api_subject": "sso:alice",
            },
            {
                "approver_id": "bob",
                "chat_subjects": [f"{project}:telegram:202"],
                "api_subject": "sso:bob",
            },
        ],
        "approvals_required": k,
        "approval_expiry_seconds": 300,
        "rate_limits": [],
        "approval_required_tools": [],
    }


@dataclasses.dataclass
class Service:
    runner: ServiceRunner
    producer: Any
    http: httpx.AsyncClient
    second: httpx.AsyncClient
    """The API of a second approval process: its own pool, the same database."""
    refs: dict[str, dict[str, str]]
    urls: StackUrls


@pytest.fixture(scope="module")
async def service(kafka_ready: StackUrls) -> AsyncIterator[Service]:
    settings = dataclasses.replace(
        kafka_ready.settings(),
        approval_token_signing_key=KEYS.signing_spec,
        approval_expiry_check_seconds=0.2,
    )
    refs = {}
    for project, k in ((PROJECT, 2), (OTHER, 1), (RACE, 1)):
        documents = {
            "demo-agent": agent_body(),
            "short-agent": agent_body("short-agent", run_timeout_seconds=2),
            "policy": policy(project, k),
        }
        refs[project] = await publish_contracts(settings, project, documents)
    runner = ServiceRunner(spec(), settings)
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(settings.kafka, client_id="approval-test")
    await producer.start()
    other_pool = await create_pool(settings.service_database_url("approval"), "approval")
    signing = SigningKey.from_spec(generate_ed25519_keys("contracts-it").signing_spec)

    def api(pool: Any) -> httpx.AsyncClient:
        app = create_api(
            lambda: pool, jwt_secret=API_SECRET, signing_key=signing, mint=token_minter(settings)
        )
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a")

    assert runner.pool is not None
    async with api(runner.pool) as http, api(other_pool) as second:
        try:
            yield Service(runner, producer, http, second, refs, kafka_ready)
        finally:
            await producer.stop()
            await other_pool.close()
            await runner.stop()


def token_of(subject: str, *projects: str) -> dict[str, str]:
    token = mint_api_token(API_SECRET, subject=subject, projects=projects, roles=["approver"])
    return {"Authorization": f"Bearer {token}"}


async def vote(
    client: httpx.AsyncClient, approval_id: uuid.UUID, subject: str, decision: str, project: str
) -> httpx.Response:
    return await client.post(
        f"/v1/approvals/{approval_id}/decisions",
        json={"decision": decision},
        headers=token_of(subject, project),
    )


async def events_of(
    urls: StackUrls, run_id: str, done: Any, *, within: float = 30.0
) -> list[Envelope[Any]]:
    async with TopicReader(urls.kafka, Topics.APPROVAL_EVENTS.name) as reader:
        seen = await reader.until(
            lambda found: done([e for e in found if e.correlation_id == run_id]), within=within
        )
    return [e for e in seen if e.correlation_id == run_id]


def types(events: list[Envelope[Any]]) -> list[str]:
    return [e.event_type for e in events]


async def held_request(
    service: Service, project: str, *, agent: str = "demo-agent"
) -> tuple[str, uuid.UUID, Envelope[Any]]:
    run_id, call_id = str(new_event_id()), unique("call-")
    held = held_call(project, run_id, call_id, service.refs[project]["policy"])
    await send(
        service.producer,
        run_started(project, run_id, REQUESTER, service.refs[project][agent]),
        held,
    )
    await events_of(service.urls, run_id, lambda found: "approval.requested" in types(found))
    return run_id, approval_id_of(project, call_id), held


async def test_two_of_three_distinct_approvers_grant_once_with_a_token_bound_to_the_call(
    service: Service,
) -> None:
    run_id, approval_id, held = await held_request(service, PROJECT)
    # The same held call redelivered (another record) asks nothing again.
    await send(service.producer, held.model_copy(update={"event_id": new_event_id()}))

    first = await vote(service.http, approval_id, "sso:alice", "approve", PROJECT)
    assert first.status_code == 200, first.text
    assert first.json() | {"approval_id": None} == {
        "approval_id": None,
        "state": "pending",
        "counted": True,
        "code": None,
        "reason": None,
    }
    # Alice again, by her chat button this time: one person counts once.
    await send(service.producer, button(PROJECT, "201", button_value("approve", approval_id)))
    # The requester (carol asked, and is an approver) never approves her own request.
    own = await vote(service.http, approval_id, "sso:carol", "approve", PROJECT)
    assert (own.status_code, own.json()["code"]) == (403, E_APPROVAL_REQUESTER.code)
    await events_of(
        service.urls, run_id, lambda found: types(found).count("approval.vote_refused") == 2
    )
    # Bob's press is the second distinct approval: granted.
    await send(service.producer, button(PROJECT, "202", button_value("approve", approval_id)))
    found = await events_of(service.urls, run_id, lambda f: "approval.granted" in types(f))

    assert types(found).count("approval.requested") == 1
    assert types(found).count("approval.granted") == 1
    refused = {e.payload.code for e in found if e.event_type == "approval.vote_refused"}
    assert refused == {E_APPROVAL_DUPLICATE.code, E_APPROVAL_REQUESTER.code}
    assert [e.stream_seq for e in found] == list(range(1, len(found) + 1))
    assert {e.stream_id for e in found} == {str(approval_id)}
    requested = found[0].payload
    assert requested.requester == f"{PROJECT}:telegram:{REQUESTER}"
    assert (requested.approvals_required, requested.approvers) == (2, ("carol", "alice", "bob"))
    (granted,) = [e.payload for e in found if e.event_type == "approval.granted"]
    assert granted.approvers == ("alice", "bob")
    claims = ApprovalTokenVerifier(RING).verify(granted.token, now=dt.datetime.now(dt.UTC))
    check_binding(
        claims,
        project_id=PROJECT,
        run_id=run_id,
        call_id=held.payload.call_id,
        action_hash=held.payload.action_hash,
    )
    assert claims.token_id == granted.token_id

    late = await vote(service.http, approval_id, "sso:bob", "reject", PROJECT)
    assert (late.status_code, late.json()["code"]) == (409, E_APPROVAL_DECIDED.code)


async def test_a_press_by_someone_who_is_no_approver_is_refused_and_recorded(
    service: Service,
) -> None:
    run_id, approval_id, _ = await held_request(service, PROJECT)
    await send(service.producer, button(PROJECT, "999", button_value("approve", approval_id)))
    found = await events_of(service.urls, run_id, lambda f: "approval.vote_refused" in types(f))
    (refused,) = [e for e in found if e.event_type == "approval.vote_refused"]
    assert refused.payload.code == E_APPROVAL_NOT_APPROVER.code
    assert refused.payload.subject == f"{PROJECT}:telegram:999"
    assert refused.actor == f"{PROJECT}:telegram:999"


async def test_one_reject_denies_and_a_vote_of_another_tenant_is_unknown(service: Service) -> None:
    run_id, approval_id, _ = await held_request(service, OTHER)
    # Alice of PROJECT holds a token for PROJECT only: OTHER's request does not exist for her.
    stranger = await vote(service.http, approval_id, "sso:alice", "approve", PROJECT)
    assert (stranger.status_code, stranger.json()["code"]) == (404, E_APPROVAL_UNKNOWN.code)
    answer = await vote(service.http, approval_id, "sso:bob", "reject", OTHER)
    assert answer.json()["state"] == "denied"
    found = await events_of(service.urls, run_id, lambda f: "approval.denied" in types(f))
    assert types(found) == ["approval.requested", "approval.vote_recorded", "approval.denied"]


async def test_a_hold_read_before_its_run_waits_for_the_run(service: Service) -> None:
    run_id, call_id = str(new_event_id()), unique("call-")
    await send(
        service.producer, held_call(PROJECT, run_id, call_id, service.refs[PROJECT]["policy"])
    )
    assert service.runner.pool is not None
    async with service.runner.pool.acquire() as conn:

        async def parked() -> bool:
            held = await conn.fetchval("SELECT count(*) FROM held_calls WHERE run_id = $1", run_id)
            return bool(held)

        await wait_for(parked, message="the hold parked until its run starts")
        asked = "SELECT count(*) FROM approval_requests WHERE run_id = $1"
        assert await conn.fetchval(asked, run_id) == 0
    await send(
        service.producer,
        run_started(PROJECT, run_id, REQUESTER, service.refs[PROJECT]["demo-agent"]),
    )
    found = await events_of(service.urls, run_id, lambda f: "approval.requested" in types(f))
    assert found[0].payload.requester == f"{PROJECT}:telegram:{REQUESTER}"


async def test_a_hold_whose_run_ends_without_waiting_is_denied_and_leaves_no_row(
    service: Service,
) -> None:
    """The run is cancelled before it said `run.approval_awaited`: its end releases the
    hold, which becomes a request the end expires at once, so the gateway hears a
    denial and nothing stays parked."""
    run_id, call_id = str(new_event_id()), unique("call-")
    await send(
        service.producer, held_call(PROJECT, run_id, call_id, service.refs[PROJECT]["policy"])
    )
    assert service.runner.pool is not None
    held = "SELECT count(*) FROM held_calls WHERE run_id = $1"
    async with service.runner.pool.acquire() as conn:

        async def parked() -> bool:
            return bool(await conn.fetchval(held, run_id))

        await wait_for(parked, message="the hold parked until its run is known")
    await send(service.producer, run_cancelled(PROJECT, run_id))
    found = await events_of(service.urls, run_id, lambda f: "approval.denied" in types(f))
    assert types(found) == ["approval.requested", "approval.denied"]
    assert found[-1].payload.code == E_APPROVAL_EXPIRED.code
    assert "the run ended (cancelled)" in found[-1].payload.reason
    assert await service.runner.pool.fetchval(held, run_id) == 0


async def test_a_request_expires_with_its_run_and_ends_denied(service: Service) -> None:
    # The short agent's runs time out 2 s after they start: so does the request.
    run_id, approval_id, _ = await held_request(service, PROJECT, agent="short-agent")
    found = await events_of(service.urls, run_id, lambda f: "approval.denied" in types(f))
    denied = found[-1].payload
    assert denied.code == E_APPROVAL_EXPIRED.code
    late = await vote(service.http, approval_id, "sso:alice", "approve", PROJECT)
    assert (late.status_code, late.json()["code"]) == (409, E_APPROVAL_DECIDED.code)


async def test_the_end_of_its_run_denies_a_pending_request(service: Service) -> None:
    run_id, _, _ = await held_request(service, PROJECT)
    await send(service.producer, run_cancelled(PROJECT, run_id))
    found = await events_of(service.urls, run_id, lambda f: "approval.denied" in types(f))
    assert found[-1].payload.code == E_APPROVAL_EXPIRED.code
    assert "the run ended (cancelled)" in found[-1].payload.reason


async def test_two_processes_racing_on_one_decision_grant_once(service: Service) -> None:
    run_id, approval_id, _ = await held_request(service, RACE)
    answers = await asyncio.gather(
        vote(service.http, approval_id, "sso:alice", "approve", RACE),
        vote(service.second, approval_id, "sso:bob", "approve", RACE),
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    found = await events_of(service.urls, run_id, lambda f: "approval.granted" in types(f))
    await asyncio.sleep(1.0)  # a second grant, had there been one, would be there by now
    found = await events_of(service.urls, run_id, lambda f: "approval.granted" in types(f))
    assert types(found).count("approval.granted") == 1
    assert types(found).count("approval.vote_refused") == 1

"""The contract read models on the real broker and Postgres: the projector folds contract
streams delivered over several batches (a publication in a later batch than its draft,
a stretch redelivered) into exactly the rows the pure fold gives, a rebuild equals
them, and the query API serves them per tenant under row-level security."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.producer import create_producer
from awooop.infra.runner import ServiceRunner
from awooop.infra.settings import KafkaSettings, asyncpg_dsn
from awooop.projector.adapters.checksums import schema_checksums
from awooop.projector.api.app import create_app
from awooop.projector.app import spec
from awooop.projector.domain.checksums import Checksums, checksums_of_rows, differences
from awooop.projector.domain.read_models import fold_batch
from awooop.projector.rebuild import Rebuild
from awooop.security.api_tokens import mint_api_token
from support.contract_envelopes import (
    OTHER_KEY,
    RING,
    RING_SPEC,
    ContractStream,
    policy_body,
    two_revisions,
)
from support.infra import StackUrls, migrated, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

CODEC = EnvelopeCodec()
SECRET = "contract-read-model-test-secret-of-32-bytes"
TABLES = ("contracts", "contract_revisions")


@dataclass(frozen=True)
class Projected:
    tenant_a: str
    tenant_b: str
    events: list[Envelope[Any]]
    """Every event sent, duplicates included."""


async def _send(producer: AIOKafkaProducer, envelopes: Sequence[Envelope[Any]]) -> None:
    for env in envelopes:
        key = f"{env.project_id}:{env.payload.contract_id}".encode()
        headers = record_headers(env, make_traceparent(env.trace_id))
        await producer.send_and_wait(
            Topics.CONTRACT_EVENTS.name, CODEC.encode(env), key=key, headers=headers
        )


async def _stored(admin_url: str, projects: set[str]) -> Checksums:
    """The digests of the live contract tables, for `projects` only (a superuser reads
    past row-level security)."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        every = await schema_checksums(conn, "projector")
    finally:
        await conn.close()
    return _only(every, projects)


def _only(checksums: Checksums, projects: set[str]) -> Checksums:
    kept = Checksums()
    for table in TABLES:
        kept.tables[table] = {p: d for p, d in checksums.tables[table].items() if p in projects}
    return kept


@pytest.fixture(scope="module")
async def projected(kafka_ready: StackUrls) -> Projected:
    a, b = unique("ca"), unique("cb")
    payments = two_revisions(a, "payments")
    budget = ContractStream(a, "budget-cap", family="budget")
    budget.draft({"family": "budget", "cap": 10})
    checked = ContractStream(a, "tampered")
    checked.draft(policy_body())
    checked.publish(1, signed_body=policy_body(note="not this body"))
    checked.draft(policy_body(note="two"))
    checked.publish(2, key=OTHER_KEY)
    theirs = ContractStream(b, "payments")  # the same contract id in another tenant
    theirs.draft(policy_body(("zoe",)), author="zed")
    settings = dataclasses.replace(kafka_ready.settings(), contract_verifying_keys=RING_SPEC)
    runner = ServiceRunner(spec(), settings)
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    producer = create_producer(settings.kafka, client_id="contract-read-model-test")
    await producer.start()
    sent: list[Envelope[Any]] = []
    try:
        # The first draft alone, projected before its publication arrives: the check of
        # that publication reads the body stored by the earlier batch.
        await _send(producer, payments.events[:1])
        await wait_for(
            lambda: _stored_has(kafka_ready.database, a, "payments", 1),
            within=60,
            message="the first draft projected",
        )
        rest = [*payments.events[1:], *budget.events, *checked.events, *theirs.events]
        redelivered = payments.events[2:6]  # a stretch sent again, at new offsets
        await _send(producer, [*rest, *redelivered])
        sent = [*payments.events, *rest[len(payments.events) - 1 :], *redelivered]
        await wait_for(
            lambda: _stored_has(kafka_ready.database, a, "payments", 11),
            within=60,
            message="every contract event projected",
        )
        await wait_for(
            lambda: _stored_has(kafka_ready.database, b, "payments", 1),
            within=60,
            message="tenant B's contract projected",
        )
    finally:
        await producer.stop()
        await runner.stop()
    return Projected(a, b, sent)


async def _stored_has(admin_url: str, project: str, contract: str, seq: int) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        found = await conn.fetchval(
            "SELECT last_stream_seq FROM projector.contracts "
            "WHERE project_id = $1 AND contract_id = $2",
            project,
            contract,
        )
    finally:
        await conn.close()
    return found is not None and found >= seq


async def test_the_live_rows_are_the_fold_of_the_events(
    kafka_ready: StackUrls, projected: Projected
) -> None:
    projects = {projected.tenant_a, projected.tenant_b}
    expected = _only(checksums_of_rows(fold_batch(projected.events, RING)), projects)
    live = await _stored(kafka_ready.database, projects)
    assert differences(live, expected) == []
    assert live.tables["contract_revisions"][projected.tenant_a].rows == 6
    assert live.tables["contracts"][projected.tenant_a].rows == 3


async def test_a_rebuild_with_the_same_ring_equals_the_live_rows(
    kafka_ready: StackUrls, projected: Projected
) -> None:
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


def auth(*projects: str) -> dict[str, str]:
    token = mint_api_token(SECRET, subject="operator", projects=projects, roles=["viewer"])
    return {"Authorization": f"Bearer {token}"}


async def test_the_listing_filters_and_pages(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    headers = auth(projected.tenant_a)
    whole = await client.get("/v1/contracts", headers=headers)
    assert whole.status_code == 200
    listed = {c["contract_id"]: c for c in whole.json()["contracts"]}
    assert list(listed) == ["budget-cap", "payments", "tampered"]
    assert (listed["payments"]["active_revision"], listed["payments"]["lifecycle"]) == (2, "active")
    assert (listed["payments"]["latest_revision"], listed["budget-cap"]["family"]) == (3, "budget")
    assert (listed["tampered"]["lifecycle"], listed["tampered"]["active_revision"]) == (
        "published",
        None,
    )
    budget = await client.get("/v1/contracts", params={"family": "budget"}, headers=headers)
    assert [c["contract_id"] for c in budget.json()["contracts"]] == ["budget-cap"]
    active = await client.get("/v1/contracts", params={"lifecycle": "active"}, headers=headers)
    assert [c["contract_id"] for c in active.json()["contracts"]] == ["payments"]
    seen, params = [], {"limit": 1}
    while True:
        page = (await client.get("/v1/contracts", params=params, headers=headers)).json()
        seen += [c["contract_id"] for c in page["contracts"]]
        if page["next"] is None:
            break
        params = {"limit": 1, "cursor": page["next"]}
    assert seen == ["budget-cap", "payments", "tampered"]
    for wrong in ({"family": "nope"}, {"lifecycle": "superseded"}, {"limit": 0}):
        assert (await client.get("/v1/contracts", params=wrong, headers=headers)).status_code == 422
    bad = await client.get("/v1/contracts", params={"cursor": "%%%"}, headers=headers)
    assert bad.status_code == 400
    assert "cursor" in bad.json()["detail"]


async def test_a_contract_comes_with_its_revision_history(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    answer = await client.get("/v1/contracts/payments", headers=auth(projected.tenant_a))
    assert answer.status_code == 200
    detail = answer.json()
    assert detail["contract"]["project_id"] == projected.tenant_a
    revisions = detail["revisions"]
    assert [(r["revision"], r["lifecycle"]) for r in revisions] == [
        (1, "retired"),
        (2, "active"),
        (3, "retired"),
    ]
    first = revisions[0]
    assert first["body"] == policy_body()
    assert first["author"] == "carol"
    assert first["signers"] == ["alice", "bob"]
    assert first["signature"] == {"kid": "projector-test", "alg": "EdDSA", "check": "valid"}
    assert first["retired_at"] == revisions[1]["activated_at"]
    assert revisions[2]["signature"] is None
    tampered = await client.get("/v1/contracts/tampered", headers=auth(projected.tenant_a))
    checks = [r["signature"]["check"] for r in tampered.json()["revisions"]]
    assert checks == ["E-CONTRACT-SIG-DIGEST", "E-CONTRACT-SIG-KID"]


async def test_tenant_b_never_sees_tenant_a_contracts(
    client: httpx.AsyncClient, projected: Projected
) -> None:
    b = auth(projected.tenant_b)
    listing = await client.get("/v1/contracts", headers=b)
    assert [(c["contract_id"], c["project_id"]) for c in listing.json()["contracts"]] == [
        ("payments", projected.tenant_b)
    ]
    own = (await client.get("/v1/contracts/payments", headers=b)).json()
    assert [(r["revision"], r["author"]) for r in own["revisions"]] == [(1, "zed")]
    for contract in ("budget-cap", "tampered"):
        hidden = await client.get(f"/v1/contracts/{contract}", headers=b)
        assert hidden.status_code == 404
        assert hidden.json()["detail"] == (
            f"contract {contract!r} not found in project {projected.tenant_b!r}"
        )
    assert (await client.get("/v1/contracts/Not_An_Id", headers=b)).status_code == 422
    assert (await client.get("/v1/contracts")).status_code == 401

"""The runtime's command API on real Postgres (the runtime schema, migrated), served
in-process: who may cancel which run, what a cancel writes, and a reset of a tenant's
kill switch. Runs are started by the runtime's own processor, their steps leased to a
process that never takes them, so each stays active until the test moves it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from awooop.contracts.families.budget import Budget
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.runner import ServiceRunner
from awooop.runtime import kill_switch
from awooop.runtime.adapters import budget_ledger, runs
from awooop.runtime.adapters.runs import Lease
from awooop.runtime.api.app import create_api
from awooop.runtime.app import spec, utc_now
from awooop.runtime.domain.budget import scopes_for
from awooop.runtime.handlers import RuntimeProcessor
from awooop.runtime.scheduler import StepPool
from awooop.security.api_tokens import mint_api_token
from support.contracts import agent_body, every_project
from support.infra import StackUrls, migrated, unique
from support.runtime_inputs import message

pytestmark = pytest.mark.integration

SECRET = "runtime-commands-test-secret-0123456789"
OWNER = "commands-test-owner"
CONTRACTS = every_project(
    {
        "demo-agent": agent_body(),
        "quick-agent": agent_body("quick-agent", script=[{"reply": "done"}]),
    }
)
CODEC = EnvelopeCodec()


class _Holding(StepPool):
    """A step pool that keeps the leases handed to it and takes no step by itself."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(
            pool,
            OWNER,
            lambda: None,
            contracts=CONTRACTS,
            clock=utc_now,
            service="runtime",
            inline_steps=False,
        )
        self.leases: list[Lease] = []

    def submit(self, lease: Lease, **_: Any) -> None:
        self.leases.append(lease)


@dataclass
class Api:
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    project: str
    woken: list[None] = field(default_factory=list)

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        roles: tuple[str, ...] = ("approver",),
        projects: tuple[str, ...] | None = None,
        subject: str = "user:alice",
    ) -> httpx.Response:
        token = mint_api_token(
            SECRET, subject=subject, projects=projects or (self.project,), roles=roles
        )
        headers = {"Authorization": f"Bearer {token}"}
        return await self.http.post(path, json=body, headers=headers)

    async def start(self, user: str, agent: str = "demo-agent") -> Lease:
        """A run of `agent`, started by the runtime's processor and leased to `OWNER`."""
        steps = _Holding(self.pool)
        processor = RuntimeProcessor(steps, contracts=CONTRACTS, clock=utc_now, service="runtime")
        sent = message(self.project, user, "status?", agent=agent)
        record = DecodedRecord(RawRecord("t", 0, 0, None, b"", (), 0), sent)
        async with self.pool.acquire() as conn, conn.transaction():
            await processor.process(conn, [record])
        processor.committed()
        (lease,) = steps.leases
        return lease

    async def events(self, stream_id: str) -> list[Envelope[Any]]:
        rows = await self.pool.fetch(
            "SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_seq", stream_id
        )
        return [CODEC.decode(bytes(row["data"])) for row in rows]


@pytest.fixture
async def api(stack_urls: StackUrls) -> AsyncIterator[Api]:
    schema_only = dataclasses.replace(
        spec(), processor=None, background=(), relay=False, reads_contracts=False
    )
    runner = ServiceRunner(schema_only, stack_urls.settings())
    await migrated(stack_urls.database, runner.spec)
    await runner.start()
    try:
        assert runner.pool is not None
        pool = runner.pool
        woken: list[None] = []
        app = create_api(
            lambda: pool, jwt_secret=SECRET, clock=utc_now, wake=lambda: woken.append(None)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as http:
            yield Api(http, pool, unique("rc"), woken)
    finally:
        await runner.stop()


def _cancel(lease: Lease) -> str:
    return f"/v1/runs/{lease.run_id}/cancel"


async def test_a_command_without_a_valid_token_is_401(api: Api) -> None:
    lease = await api.start("1")
    bare = await api.http.post(_cancel(lease), json={"reason": "stop"})
    assert bare.status_code == 401
    assert bare.json()["code"] == "E-API-UNAUTHORIZED"
    forged = mint_api_token(
        "another-secret-0123456789abcdef0123", subject="x", projects=[], roles=[]
    )
    wrong = await api.http.post(
        _cancel(lease), json={"reason": "stop"}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert wrong.status_code == 401
    assert "signature" in wrong.json()["reason"]
    assert [e.event_type for e in await api.events(str(lease.run_id))] == ["run.started"]


async def test_roles_and_projects_decide_who_cancels_and_other_tenants_runs_stay_hidden(
    api: Api,
) -> None:
    lease = await api.start("2")
    viewer = await api.post(_cancel(lease), {"reason": "stop"}, roles=("viewer",))
    assert viewer.status_code == 403
    assert viewer.json()["code"] == "E-API-FORBIDDEN"
    # An approver of another project learns nothing of this one's run: 404, as for none.
    elsewhere = await api.post(_cancel(lease), {"reason": "stop"}, projects=("someone-else",))
    missing = await api.post(
        "/v1/runs/00000000-0000-7000-8000-000000000000/cancel", {"reason": "x"}
    )
    assert (elsewhere.status_code, missing.status_code) == (404, 404)
    assert elsewhere.json()["code"] == missing.json()["code"] == "E-RUN-UNKNOWN"
    assert [e.event_type for e in await api.events(str(lease.run_id))] == ["run.started"]
    reset = await api.post(f"/v1/budgets/{api.project}/reset", {"reason": "raised"})
    assert reset.status_code == 403
    assert reset.json()["code"] == "E-API-FORBIDDEN"


async def test_a_reason_is_required(api: Api) -> None:
    lease = await api.start("3")
    for body in (None, {}, {"reason": "   "}, {"reason": "stop", "extra": 1}):
        refused = await api.post(_cancel(lease), body)
        assert refused.status_code == 422, body
        assert refused.json()["code"] == "E-API-REQUEST-INVALID"
    not_an_id = await api.post("/v1/runs/not-a-run/cancel", {"reason": "stop"})
    assert not_an_id.status_code == 422
    assert [e.event_type for e in await api.events(str(lease.run_id))] == ["run.started"]


async def test_a_cancel_is_idempotent_and_the_step_under_the_old_lease_commits_nothing(
    api: Api,
) -> None:
    lease = await api.start("4")
    first = await api.post(_cancel(lease), {"reason": "wrong agent"}, subject="user:bob")
    assert first.status_code == 200, first.text
    assert first.json() == {
        "run_id": str(lease.run_id),
        "project_id": api.project,
        "state": "cancelled",
        "already": False,
    }
    again = await api.post(_cancel(lease), {"reason": "still wrong"}, roles=("operator",))
    assert again.status_code == 200
    assert again.json()["already"] is True
    events = await api.events(str(lease.run_id))
    assert [e.event_type for e in events] == ["run.started", "run.cancelled"]
    cancelled = events[-1].payload
    assert (cancelled.code, cancelled.reason, cancelled.actor) == (
        "E-RUN-CANCELLED",
        "wrong agent",
        "user:bob",
    )
    assert len(api.woken) == 1  # the relay is woken after the cancel that appended only
    row = await api.pool.fetchrow(
        "SELECT state, lease_owner, lease_epoch FROM runs WHERE run_id = $1", lease.run_id
    )
    assert tuple(row) == ("cancelled", None, lease.epoch + 1)
    async with api.pool.acquire() as conn, conn.transaction():
        assert await runs.holds_lease(conn, lease, OWNER) is None
    # The step that held the run when it was cancelled wakes up and commits nothing.
    assert await _Holding(api.pool).executor.step(api.pool, lease) is None
    assert len(await api.events(str(lease.run_id))) == 2


async def test_a_run_that_ended_otherwise_is_409(api: Api) -> None:
    lease = await api.start("5", agent="quick-agent")
    steps = _Holding(api.pool)
    assert await steps.executor.step(api.pool, lease) is None
    assert steps.executor.committed == 1
    refused = await api.post(_cancel(lease), {"reason": "too late"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "E-RUN-ENDED"
    assert refused.json()["state"] == "completed"
    types = [e.event_type for e in await api.events(str(lease.run_id))]
    assert types == ["run.started", "run.completed"]


async def test_an_operator_resets_a_tripped_kill_switch(api: Api) -> None:
    path = f"/v1/budgets/{api.project}/reset"
    untripped = await api.post(path, {"reason": "nothing to do"}, roles=("operator",))
    assert untripped.status_code == 200
    assert untripped.json() == {"project_id": api.project, "was_killed": False}
    await kill_switch.kill_tenant(
        api.pool,
        api.project,
        reason="spent",
        budget_revision="budget@1:abc",
        now=utc_now(),
        service="runtime",
    )
    reset = await api.post(path, {"reason": "budget raised"}, roles=("operator",))
    assert reset.json() == {"project_id": api.project, "was_killed": True}
    events = await api.events(f"budget:{api.project}")
    assert [e.event_type for e in events] == ["budget.tenant_killed", "budget.tenant_reset"]
    assert (events[-1].payload.actor, events[-1].payload.reason) == ("user:alice", "budget raised")
    assert len(api.woken) == 1


async def test_the_live_ledger_shows_what_is_reserved_and_settled_to_its_own_tenant(
    api: Api,
) -> None:
    budget = Budget.model_validate(
        {
            "family": "budget",
            "schema_version": 1,
            "limits": [
                {"scope": "tenant", "period": "daily", "max_tokens": 1_000, "max_cost": "1"},
                {"scope": "run", "period": "run", "max_tokens": 500},
            ],
            "prices": [],
            "currency": "USD",
            "kill_switch_at": "0.9",
        }
    )
    run_id = uuid.uuid4()
    scopes = scopes_for(budget, api.project, "demo-agent", run_id, utc_now())
    async with api.pool.acquire() as conn, conn.transaction():
        held = await budget_ledger.reserve(
            conn, api.project, run_id, 0, scopes, 120, Decimal("0.25"), 100
        )
        assert isinstance(held, budget_ledger.Reservation)
    token = mint_api_token(SECRET, subject="v", projects=(api.project,), roles=("viewer",))
    path = f"/v1/budgets/{api.project}/ledger"
    shown = await api.http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert shown.status_code == 200
    body = shown.json()
    assert body["killed"] is False
    (tenant,) = body["scopes"]  # the run's own scope is left out
    assert (tenant["scope"], tenant["limit_tokens"], tenant["limit_cost"]) == ("tenant", 1000, "1")
    assert (tenant["reserved_tokens"], tenant["reserved_cost"]) == (120, "0.25")
    assert (tenant["settled_tokens"], tenant["settled_cost"]) == (0, "0")
    other = mint_api_token(SECRET, subject="v", projects=("someone-else",), roles=("viewer",))
    hidden = await api.http.get(path, headers={"Authorization": f"Bearer {other}"})
    assert hidden.status_code == 403
    assert hidden.json()["code"] == "E-API-FORBIDDEN"

"""Held calls released by approval tokens: run once, ever, through gates 1 to 5 again,
and retried only when a failure may pass on its own.

Tokens are minted here with a key whose public half is the gateway's ring (its
`AWOOOP_APPROVAL_TOKEN_VERIFYING_KEYS`). Every execution is counted where it happens,
in the demo MCP server's journal; failures are injected through its control file. Each
scenario holds calls of its own runs; the gateway and its demo servers are the module's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from awooop.contracts.events.payloads.budget import TenantKilled
from awooop.contracts.events.payloads.run import ToolCallRequested
from awooop.contracts.records.envelope import Envelope, new_trace_id
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.reader import contracts_of
from awooop.infra.redis import create_redis
from awooop.mcp_gateway.adapters.used_tokens import token_key
from awooop.security.action_hash import action_hash
from awooop.security.approval_tokens import approval_token_id
from awooop.security.signing_keys import generate_ed25519_keys
from support.contracts import (
    agent_body,
    agent_ref,
    deployed_tool,
    granting,
    lifecycle,
    policy_body,
    produce,
    status_tool_body,
)
from support.demo_mcp import calls, fail_next_calls, read_journal
from support.gateway import (
    CODEC,
    Gateway,
    answers,
    approval_token,
    approved,
    of_call,
    request,
    running_gateway,
    send,
)
from support.infra import StackUrls, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

KEYS = generate_ed25519_keys("approval-test")
ROGUE = generate_ed25519_keys("approval-rogue")
"""A key the gateway's ring does not hold."""
RETRY_DELAY = 0.05

AGENT = granting(
    agent_body(),
    ("status__demo", "read"),
    ("restart_service__demo", "write"),
    ("wipe_volume__demo", "admin"),
    ("prune_cache__demo", "write"),
)
REVISION = agent_ref(AGENT)
SUGGEST, CHANGING, KILLED = unique("ap"), unique("apc"), unique("apk")
"""SUGGEST holds every write; CHANGING's policy changes while a call is held; KILLED's
kill switch trips while a call is held."""
OBSERVED_TOOL = {**deployed_tool("prune_cache"), "observation_only": True}


def documents() -> dict[str, dict[str, Any]]:
    return {
        "demo-agent": AGENT,
        "status-demo": status_tool_body(),
        "restart-service": deployed_tool("restart_service"),
        "wipe-volume": deployed_tool("wipe_volume"),
        "prune-cache": OBSERVED_TOOL,
        "policy": policy_body("suggest"),
    }


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The demo servers' journal and control file, for every server the gateway spawns."""
    folder = tmp_path_factory.mktemp("demo-mcp-approved")
    paths = (folder / "journal.jsonl", folder / "control.json")
    env = {"AWOOOP_DEMO_MCP_JOURNAL": str(paths[0]), "AWOOOP_DEMO_MCP_CONTROL": str(paths[1])}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield paths
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
async def gateway(kafka_ready: StackUrls, journal: tuple[Path, Path]) -> AsyncIterator[Gateway]:
    projects = {SUGGEST: documents(), CHANGING: documents(), KILLED: documents()}
    async with running_gateway(
        kafka_ready,
        projects,
        approval_token_verifying_keys=KEYS.verifying_spec,
        mcp_retry_delay_seconds=RETRY_DELAY,
    ) as running:
        yield running


def served(journal: tuple[Path, Path], tool: str, **arguments: Any) -> list[dict[str, Any]]:
    """The calls of `tool` the demo servers served with these arguments among theirs."""
    return [
        c
        for c in calls(read_journal(journal[0]), tool)
        if all(c["arguments"].get(k) == v for k, v in arguments.items())
    ]


def ask(
    project: str,
    tool: str,
    *,
    within: dt.timedelta = dt.timedelta(minutes=5),
    **arguments: Any,
) -> Envelope[ToolCallRequested]:
    return request(
        project,
        unique("run-"),
        unique("call-"),
        tool=tool,
        arguments=arguments,
        revision=REVISION,
        execute_within=within,
    )


async def hold(gateway: Gateway, asked: Envelope[ToolCallRequested]) -> Envelope[Any]:
    """Send the request and return the gateway's `gateway.approval_required` for it."""
    await send(gateway, asked)
    (held,) = await answers(gateway.urls, {asked.correlation_id}, bool, settle=0.1)
    assert held.event_type == "gateway.approval_required", held
    assert held.stream_seq == 1
    return held


async def hold_all(gateway: Gateway, *asked: Envelope[ToolCallRequested]) -> list[Envelope[Any]]:
    return list(await asyncio.gather(*(hold(gateway, a) for a in asked)))


async def outcome_of(
    gateway: Gateway, asked: Envelope[ToolCallRequested], count: int = 2, settle: float = 0.5
) -> list[Envelope[Any]]:
    """The call's events once it has `count` (its hold first), in stream order, after
    `settle` seconds more in which a further event would have shown."""
    call_id = asked.payload.call_id
    found = await answers(
        gateway.urls,
        {asked.correlation_id},
        lambda f: len(of_call(f, call_id)) >= count,
        settle=settle,
    )
    events = sorted(of_call(found, call_id), key=lambda e: e.stream_seq)
    assert [e.stream_seq for e in events] == list(range(1, len(events) + 1)), events
    for event in events:
        assert (event.stream_type, event.correlation_id) == ("tool_call", asked.correlation_id)
        assert event.causation_id == str(asked.event_id)
        assert event.trace_id == asked.trace_id
    return events


def refused(event: Envelope[Any], code: str) -> str:
    assert event.event_type == "gateway.tool_call_blocked", event
    assert (event.payload.gate, event.payload.code) == (5, code)
    reason: str = event.payload.reason
    return reason


async def row(gateway: Gateway, asked: Envelope[ToolCallRequested]) -> Any:
    return await gateway.pool.fetchrow(
        "SELECT status, outcome_code, approval_id FROM tool_calls WHERE call_id = $1",
        asked.payload.call_id,
    )


async def test_an_approved_write_runs_once_and_answers_at_seq_2(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service = unique("svc-")
    asked = ask(SUGGEST, "restart_service__demo", service=service)
    held = await hold(gateway, asked)
    assert served(journal, "restart_service", service=service) == []

    approval_id, token = approval_token(KEYS.signing_spec, asked, held.payload.action_hash)
    await send(gateway, approved(asked, approval_id, token))
    events = await outcome_of(gateway, asked)
    assert [e.event_type for e in events] == [
        "gateway.approval_required",
        "gateway.tool_call_succeeded",
    ]
    assert events[1].payload.result == {"service": service, "restarts": 1}
    assert len(served(journal, "restart_service", service=service)) == 1
    state = await row(gateway, asked)
    assert (state["status"], state["approval_id"]) == ("succeeded", approval_id)
    used = await gateway.pool.fetch(
        "SELECT call_id, approval_id FROM approval_tokens_used WHERE token_id = $1",
        approval_token_id(approval_id),
    )
    assert [(u["call_id"], u["approval_id"]) for u in used] == [
        (asked.payload.call_id, approval_id)
    ]


async def test_an_approval_granted_after_the_requests_deadline_still_runs(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    """People take longer than a step: the approved call runs by the approval's deadline,
    not by the one its request had (which passed while they decided)."""
    service = unique("svc-")
    asked = ask(SUGGEST, "restart_service__demo", within=dt.timedelta(seconds=1), service=service)
    held = await hold(gateway, asked)
    await asyncio.sleep(1.5)  # the request's own deadline is gone
    approval_id, token = approval_token(KEYS.signing_spec, asked, held.payload.action_hash)
    await send(gateway, approved(asked, approval_id, token))
    events = await outcome_of(gateway, asked)
    assert events[1].event_type == "gateway.tool_call_succeeded", events[1]
    assert len(served(journal, "restart_service", service=service)) == 1


async def test_an_approval_redelivered_or_its_token_presented_again_is_ignored(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service = unique("svc-")
    asked = ask(SUGGEST, "restart_service__demo", service=service)
    held = await hold(gateway, asked)
    approval_id, token = approval_token(KEYS.signing_spec, asked, held.payload.action_hash)
    first = approved(asked, approval_id, token)
    await send(gateway, first)
    await outcome_of(gateway, asked, settle=0.1)

    # The same record again, and a second approval event presenting the same token;
    # then a call of the same run (same partition, so decided after them) to know
    # they were consumed.
    again = approved(asked, approval_id, token, seq=3)
    control = request(
        SUGGEST,
        asked.correlation_id,
        unique("call-"),
        tool="status__demo",
        arguments={"service": service},
        revision=REVISION,
        seq=4,
    )
    await send(gateway, first, again, control)
    found = await answers(
        gateway.urls,
        {asked.correlation_id},
        lambda f: bool(of_call(f, control.payload.call_id)),
        settle=1.0,
    )
    (ran,) = of_call(found, control.payload.call_id)
    assert ran.event_type == "gateway.tool_call_succeeded"
    assert [e.stream_seq for e in of_call(found, asked.payload.call_id)] == [1, 2]
    assert len(served(journal, "restart_service", service=service)) == 1
    assert (await row(gateway, asked))["status"] == "succeeded"


async def test_tokens_bound_to_other_arguments_or_another_run_are_refused(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    services = [unique("svc-") for _ in range(2)]
    other_arguments, other_run = (
        ask(SUGGEST, "restart_service__demo", service=service) for service in services
    )
    held = await hold_all(gateway, other_arguments, other_run)
    policy_ref = held[0].payload.revisions[-1]
    same_tool_other_arguments = action_hash(
        project_id=SUGGEST,
        run_id=other_arguments.correlation_id,
        call_id=other_arguments.payload.call_id,
        tool="restart_service__demo",
        arguments={"service": unique("elsewhere-")},
        policy_revision=policy_ref,
    )
    foreign_run = unique("run-")
    for_that_run = action_hash(
        project_id=SUGGEST,
        run_id=foreign_run,
        call_id=other_run.payload.call_id,
        tool="restart_service__demo",
        arguments={"service": services[1]},
        policy_revision=policy_ref,
    )
    await send(
        gateway,
        approved(
            other_arguments,
            *approval_token(KEYS.signing_spec, other_arguments, same_tool_other_arguments),
        ),
        approved(
            other_run,
            *approval_token(KEYS.signing_spec, other_run, for_that_run, run_id=foreign_run),
        ),
    )
    first, second = await asyncio.gather(
        outcome_of(gateway, other_arguments), outcome_of(gateway, other_run)
    )
    assert "another action" in refused(first[1], "E-MCP-GATE-009")
    assert "another run" in refused(second[1], "E-MCP-GATE-009")
    for asked, service in zip((other_arguments, other_run), services, strict=True):
        assert served(journal, "restart_service", service=service) == []
        state = await row(gateway, asked)
        assert (state["status"], state["outcome_code"]) == ("blocked", "E-MCP-GATE-009")


async def test_an_expired_token_and_one_of_an_unknown_key_are_refused(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    volumes = [unique("vol-") for _ in range(2)]
    expired, rogue = (ask(SUGGEST, "wipe_volume__demo", volume=volume) for volume in volumes)
    held = await hold_all(gateway, expired, rogue)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    await send(
        gateway,
        approved(
            expired,
            *approval_token(
                KEYS.signing_spec, expired, held[0].payload.action_hash, issued_at=long_ago
            ),
        ),
        approved(rogue, *approval_token(ROGUE.signing_spec, rogue, held[1].payload.action_hash)),
    )
    first, second = await asyncio.gather(outcome_of(gateway, expired), outcome_of(gateway, rogue))
    assert "expired" in refused(first[1], "E-MCP-GATE-008")
    assert "approval-rogue" in refused(second[1], "E-MCP-GATE-008")
    for volume in volumes:
        assert served(journal, "wipe_volume", volume=volume) == []


async def test_a_token_for_a_call_whose_policy_changed_since_its_hold_is_refused(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service = unique("svc-")
    asked = ask(CHANGING, "restart_service__demo", service=service)
    held = await hold(gateway, asked)
    stricter = {**policy_body("suggest"), "approval_expiry_seconds": 120}
    await produce(
        gateway.runner.settings, lifecycle(CHANGING, "policy", stricter, revision=2, superseded=1)
    )
    before = held.payload.revisions[-1]

    def changed() -> bool:
        policy = contracts_of(gateway.runner).view.policy(CHANGING)
        return policy is not None and policy.ref != before

    await wait_for(changed, message="the gateway to read the new policy")
    # The token names the action as held: under the policy revision of the hold.
    await send(
        gateway,
        approved(asked, *approval_token(KEYS.signing_spec, asked, held.payload.action_hash)),
    )
    events = await outcome_of(gateway, asked)
    assert "another action" in refused(events[1], "E-MCP-GATE-009")
    assert served(journal, "restart_service", service=service) == []


async def test_gates_1_to_4_run_again_on_the_approved_call(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service = unique("svc-")
    asked = ask(KILLED, "restart_service__demo", service=service)
    held = await hold(gateway, asked)
    killed = new_envelope(
        TenantKilled(code="E-BUDGET-KILLED", reason="spent", budget_revision="budget@1:abc"),
        occurred_at=dt.datetime.now(dt.UTC),
        project_id=KILLED,
        stream_type="budget",
        stream_id=KILLED,
        stream_seq=1,
        trace_id=new_trace_id(),
        correlation_id=KILLED,
        actor="service:runtime",
        producer="runtime",
    )
    await gateway.producer.send_and_wait(
        Topics.BUDGET_EVENTS.name,
        CODEC.encode(killed),
        key=KILLED.encode(),
        headers=record_headers(killed, make_traceparent(killed.trace_id)),
    )

    async def folded() -> bool:
        found = await gateway.pool.fetchval(
            "SELECT 1 FROM tenant_kills WHERE project_id = $1", KILLED
        )
        return found is not None

    await wait_for(folded, message="the kill switch folded")
    await send(
        gateway,
        approved(asked, *approval_token(KEYS.signing_spec, asked, held.payload.action_hash)),
    )
    events = await outcome_of(gateway, asked)
    assert events[1].event_type == "gateway.tool_call_blocked", events[1]
    assert (events[1].payload.gate, events[1].payload.code) == (4, "E-MCP-GATE-006")
    assert served(journal, "restart_service", service=service) == []


async def test_a_used_token_is_refused_by_postgres_and_early_by_redis(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    """A token used before for this call, as the single-use guard would hold it after a
    grant replayed past the hold (Postgres), or as another process marked it (Redis)."""
    services = [unique("svc-") for _ in range(2)]
    in_postgres, in_redis = (
        ask(SUGGEST, "restart_service__demo", service=service) for service in services
    )
    held = await hold_all(gateway, in_postgres, in_redis)
    first = approval_token(KEYS.signing_spec, in_postgres, held[0].payload.action_hash)
    second = approval_token(KEYS.signing_spec, in_redis, held[1].payload.action_hash)
    await gateway.pool.execute(
        "INSERT INTO approval_tokens_used (token_id, call_id, approval_id) VALUES ($1, $2, $3)",
        approval_token_id(first[0]),
        in_postgres.payload.call_id,
        first[0],
    )
    redis = create_redis(gateway.urls.redis)
    try:
        await redis.set(token_key(approval_token_id(second[0])), "call-of-another-process", ex=60)
    finally:
        await redis.aclose()
    await send(gateway, approved(in_postgres, *first), approved(in_redis, *second))
    answered = await asyncio.gather(outcome_of(gateway, in_postgres), outcome_of(gateway, in_redis))
    for events, service in zip(answered, services, strict=True):
        assert "already used" in refused(events[1], "E-MCP-GATE-009")
        assert served(journal, "restart_service", service=service) == []


async def approved_restart_failing(
    gateway: Gateway, journal: tuple[Path, Path], message: str, times: int
) -> tuple[str, Envelope[ToolCallRequested]]:
    """A restart held, its server set to fail the next `times` calls of it with `message`,
    then approved: the service it restarts and the request."""
    service = unique("svc-")
    asked = ask(SUGGEST, "restart_service__demo", service=service)
    held = await hold(gateway, asked)
    fail_next_calls(
        journal[1], "restart_service", message, count=times, arguments={"service": service}
    )
    token = approval_token(KEYS.signing_spec, asked, held.payload.action_hash)
    await send(gateway, approved(asked, *token))
    return service, asked


async def test_a_transient_failure_is_retried_and_succeeds_on_the_second_attempt(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service, asked = await approved_restart_failing(gateway, journal, "503 service unavailable", 1)
    events = await outcome_of(gateway, asked, count=3)
    assert [e.event_type for e in events] == [
        "gateway.approval_required",
        "gateway.tool_call_retried",
        "gateway.tool_call_succeeded",
    ]
    retry = events[1].payload
    assert (retry.attempt, retry.code, retry.retry_in) == (1, "E-MCP-CALL-FAILED", RETRY_DELAY)
    assert "503 service unavailable" in retry.reason
    assert events[2].payload.result == {"service": service, "restarts": 1}
    assert len(served(journal, "restart_service", service=service)) == 2


async def test_a_permanent_failure_is_never_retried(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    # A transient sign and a permanent one: permanent wins.
    service, asked = await approved_restart_failing(gateway, journal, "503: not found", 3)
    events = await outcome_of(gateway, asked, settle=1.0)
    assert [e.event_type for e in events] == [
        "gateway.approval_required",
        "gateway.tool_call_failed",
    ]
    assert (events[1].payload.code, events[1].payload.transient) == ("E-MCP-CALL-FAILED", False)
    assert len(served(journal, "restart_service", service=service)) == 1


async def test_a_transient_failure_that_persists_stops_after_three_attempts(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    service, asked = await approved_restart_failing(
        gateway, journal, "Connection reset by peer", 10
    )
    events = await outcome_of(gateway, asked, count=4, settle=1.0)
    assert [e.event_type for e in events] == [
        "gateway.approval_required",
        "gateway.tool_call_retried",
        "gateway.tool_call_retried",
        "gateway.tool_call_failed",
    ]
    assert [e.payload.attempt for e in events[1:3]] == [1, 2]
    assert [e.payload.retry_in for e in events[1:3]] == [RETRY_DELAY, 2 * RETRY_DELAY]
    assert events[3].payload.transient is True
    assert len(served(journal, "restart_service", service=service)) == 3


async def test_an_approved_observation_only_call_succeeds_without_a_call(
    gateway: Gateway, journal: tuple[Path, Path]
) -> None:
    cache = unique("cache-")
    asked = ask(SUGGEST, "prune_cache__demo", cache=cache, older_than_minutes=5)
    held = await hold(gateway, asked)
    await send(
        gateway,
        approved(asked, *approval_token(KEYS.signing_spec, asked, held.payload.action_hash)),
    )
    events = await outcome_of(gateway, asked, settle=1.0)
    assert events[1].event_type == "gateway.tool_call_succeeded", events[1]
    assert events[1].payload.result["observed"] is True
    assert events[1].payload.result["performed"] is False
    assert events[1].payload.latency_ms is None
    assert served(journal, "prune_cache", cache=cache) == []

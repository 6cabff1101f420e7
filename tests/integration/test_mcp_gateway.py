"""The MCP gateway in-process against the real broker, Postgres and a real stdio MCP server.

The `mcp_gateway` schema and consumer group are shared by every test here (and by
any other suite that runs the gateway), so each test uses its own project, run
and call ids and reads only its own answers from `gateway.events`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from awooop.contracts.events.payloads.run import ToolCallRequested
from awooop.contracts.families.tool import Tool
from awooop.contracts.records.envelope import Envelope
from awooop.infra.postgres.pools import create_pool
from awooop.mcp_gateway.adapters import call_transactions
from awooop.mcp_gateway.adapters.call_transactions import FinishedCall
from awooop.mcp_gateway.adapters.executor_connection import (
    LOCK_CLASS,
    ExecutorConnection,
    liveness_key,
)
from awooop.mcp_gateway.adapters.mcp_sessions import McpSessionPool
from awooop.mcp_gateway.adapters.provider_session import SessionUnavailable
from awooop.mcp_gateway.adapters.tool_calls import ClaimedCall
from awooop.mcp_gateway.domain.calls import requested_call
from awooop.mcp_gateway.domain.results import CallResult
from support.contracts import (
    agent_body,
    agent_ref,
    demo_documents,
    deployed_tool,
    granting,
    status_tool_body,
)
from support.gateway import (
    Gateway,
    answers,
    assert_answers,
    demo_servers,
    of_call,
    request,
    running_gateway,
    send,
)
from support.infra import StackUrls, unique
from support.pipeline import wait_for

pytestmark = pytest.mark.integration

PROJECT = unique("gw")
"""The module's one project: its tool contract is active before the gateway starts."""
AGENT = granting(agent_body(), ("status__demo", "read"), ("diagnose__demo", "read"))
REVISION = agent_ref(AGENT)


@pytest.fixture(scope="module")
async def gateway(kafka_ready: StackUrls) -> AsyncIterator[Gateway]:
    documents = {
        **demo_documents(PROJECT),
        "demo-agent": AGENT,
        "diagnose": deployed_tool("diagnose"),
    }
    async with running_gateway(kafka_ready, {PROJECT: documents}) as running:
        yield running


async def test_a_known_tool_runs_on_the_demo_server_over_one_reused_session(
    gateway: Gateway,
) -> None:
    project, run_id = PROJECT, unique("run-")
    first = ask(project, run_id, unique("call-"), arguments={"service": "checkout"})
    second = ask(project, run_id, unique("call-"), arguments={"service": "payments"}, seq=2)
    await send(gateway, first, second)

    found = await answers(gateway.urls, {run_id}, lambda f: len(f) >= 2)

    assert len(found) == 2
    for asked, service in ((first, "checkout"), (second, "payments")):
        (answer,) = of_call(found, asked.payload.call_id)
        assert answer.event_type == "gateway.tool_call_succeeded", answer.payload
        assert answer.payload.result == {"service": service, "status": "healthy", "checks": 3}
        assert answer.payload.revisions == (gateway.tool_revision,)
        assert_answers(answer, asked)
    # Both calls (and any other call of the project) went through one stdio session.
    # (The shared broker also holds other modules' calls, of projects of their own.)
    assert gateway.executor.sessions.opened_for[(project, "demo")] == 1
    rows = await gateway.pool.fetch(
        "SELECT status, started_at, finished_at, claimed_by FROM tool_calls WHERE run_id = $1",
        run_id,
    )
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert all(r["claimed_by"] == gateway.runner.instance_id for r in rows)
    assert all(r["started_at"] <= r["finished_at"] for r in rows)


async def test_an_unknown_tool_is_blocked_at_gate_1(gateway: Gateway) -> None:
    project, run_id = PROJECT, unique("run-")
    asked = ask(project, run_id, unique("call-"), tool="drop_tables__demo")
    await send(gateway, asked)

    found = await answers(gateway.urls, {run_id}, bool)

    (answer,) = found
    assert answer.event_type == "gateway.tool_call_blocked"
    assert (answer.payload.gate, answer.payload.code) == (1, "E-MCP-GATE-001")
    assert answer.payload.revisions == ()
    assert answer.payload.call_id == asked.payload.call_id
    assert_answers(answer, asked)
    status = await gateway.pool.fetchval(
        "SELECT status FROM tool_calls WHERE call_id = $1", asked.payload.call_id
    )
    assert status == "blocked"


def _served_tool() -> Tool:
    """The demo server's own call counter, reached through the gateway's session to it."""
    return Tool.model_validate({**status_tool_body(), "name": "served__demo", "tool": "served"})


async def served_at_server(gateway: Gateway, service: str) -> int:
    """How many `status` calls for `service` the gateway's demo server has executed."""
    answer = await gateway.executor.sessions.call(PROJECT, _served_tool(), {"service": service})
    assert answer.structured is not None, answer
    assert answer.structured["service"] == service
    return int(answer.structured["status_calls"])


async def _calls_settled(gateway: Gateway, run_id: str) -> bool:
    """No call of the run is waiting to run or running (whatever a batch admitted, the
    executor has finished)."""
    pending = await gateway.pool.fetchval(
        "SELECT count(*) FROM tool_calls WHERE run_id = $1 AND status IN ('admitted', 'executing')",
        run_id,
    )
    return pending == 0


async def test_a_request_delivered_again_is_executed_once_at_the_mcp_server(
    gateway: Gateway,
) -> None:
    """One tool call reaches the gateway five times: the same record twice, asked again
    under a new event id (a runtime retry) in the same stretch, and, once it has been
    answered, the same record and another retry again. The MCP server must have run it
    once, counted by the server itself, and the run gets one answer.

    Breaks caught: a gateway that executes a redelivered or re-asked call (its inbox or
    its call-id guard letting it through, before or after the first execution
    finished), even when the second answer would be deduplicated downstream: the
    count is taken where the call is executed, not from its answers."""
    project, run_id = PROJECT, unique("run-")
    service = unique("svc-")  # the server counts per service: only this test's calls
    sessions_before = dict(gateway.executor.sessions.opened)
    arguments = {"service": service}
    asked = ask(project, run_id, unique("call-"), arguments=arguments)
    call_id = asked.payload.call_id
    asked_again = ask(project, run_id, call_id, arguments=arguments, seq=2)
    # Same key, so same partition: once a marker is answered, the ones before it were decided.
    marker = ask(project, run_id, unique("call-"), tool="unknown__demo", seq=3)
    await send(gateway, asked, asked, asked_again, marker)
    await answers(gateway.urls, {run_id}, lambda f: bool(of_call(f, call_id)) and len(f) >= 2)

    asked_late = ask(project, run_id, call_id, arguments=arguments, seq=4)
    late_marker = ask(project, run_id, unique("call-"), tool="unknown__demo", seq=5)
    await send(gateway, asked, asked_late, late_marker)
    found = await answers(
        gateway.urls, {run_id}, lambda f: bool(of_call(f, late_marker.payload.call_id))
    )

    async def settled_or_run_again() -> bool:
        return await _calls_settled(gateway, run_id) or await served_at_server(gateway, service) > 1

    await wait_for(settled_or_run_again, message="the run's calls to finish")

    executed = await served_at_server(gateway, service)
    assert executed == 1, f"the MCP server executed the call {executed} times"
    # ... and it was one server process that counted them all.
    assert dict(gateway.executor.sessions.opened) == sessions_before
    (answer,) = of_call(found, call_id)
    assert answer.event_type == "gateway.tool_call_succeeded"
    assert answer.payload.result == {"service": service, "status": "healthy", "checks": 3}
    assert_answers(answer, asked)
    for blocked in (marker, late_marker):
        assert [e.event_type for e in of_call(found, blocked.payload.call_id)] == [
            "gateway.tool_call_blocked"
        ]
    assert len(found) == 3
    assert (
        await gateway.pool.fetchval("SELECT count(*) FROM tool_calls WHERE run_id = $1", run_id)
        == 3
    )


async def test_a_call_past_its_execute_before_fails_without_running(gateway: Gateway) -> None:
    project, run_id = PROJECT, unique("run-")
    asked = ask(project, run_id, unique("call-"), execute_within=dt.timedelta(seconds=-30))
    await send(gateway, asked)

    found = await answers(gateway.urls, {run_id}, bool)

    (answer,) = found
    assert answer.event_type == "gateway.tool_call_failed"
    assert answer.payload.code == "E-MCP-CALL-EXPIRED"
    assert_answers(answer, asked)
    row = await gateway.pool.fetchrow(
        "SELECT status, started_at, outcome_code FROM tool_calls WHERE call_id = $1",
        asked.payload.call_id,
    )
    assert row is not None
    assert (row["status"], row["started_at"], row["outcome_code"]) == (
        "failed",
        None,
        "E-MCP-CALL-EXPIRED",
    )


async def test_a_tool_error_is_answered_failed_with_the_servers_text(gateway: Gateway) -> None:
    project, run_id = PROJECT, unique("run-")
    asked = ask(
        project, run_id, unique("call-"), tool="diagnose__demo", arguments={"service": "Nope!"}
    )
    await send(gateway, asked)

    found = await answers(gateway.urls, {run_id}, bool)

    (answer,) = found
    assert answer.event_type == "gateway.tool_call_failed"
    assert answer.payload.code == "E-MCP-CALL-FAILED"
    assert "no service named 'Nope!'" in answer.payload.reason  # the server's own words
    assert answer.payload.transient is False
    assert_answers(answer, asked)


async def _left_executing(gateway: Gateway, asked: Envelope[ToolCallRequested], by: str) -> None:
    call = asked.payload
    await gateway.pool.execute(
        """
        INSERT INTO tool_calls (call_id, run_id, project_id, tool, arguments, execute_before,
                                trace_id, request_event_id, status, revision, claimed_by,
                                started_at)
        VALUES ($1, $2, $3, $4, '{}'::jsonb, $5, $6, $7, 'executing', $8, $9, now())
        """,
        call.call_id,
        asked.correlation_id,
        asked.project_id,
        call.tool,
        call.execute_before,
        asked.trace_id,
        asked.event_id,
        REVISION,
        by,
    )


async def test_calls_left_executing_by_a_gone_process_are_answered_unknown_never_rerun(
    gateway: Gateway,
) -> None:
    project, run_id = PROJECT, unique("run-")
    orphan = ask(project, run_id, unique("call-"))
    in_flight = ask(project, run_id, unique("call-"))
    gone, alive = unique("mcp_gateway-gone-"), unique("mcp_gateway-alive-")
    # A live peer holds its liveness lock: its call in flight must be left alone.
    peer = await asyncpg.connect(gateway.urls.database)
    try:
        await peer.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, liveness_key(alive))
        await _left_executing(gateway, orphan, gone)
        await _left_executing(gateway, in_flight, alive)

        found = await answers(gateway.urls, {run_id}, bool)

        (answer,) = found
        assert answer.stream_id == orphan.payload.call_id
        assert answer.event_type == "gateway.tool_call_failed"
        assert answer.payload.code == "E-MCP-CALL-UNKNOWN"
        assert_answers(answer, orphan)
        assert (
            await gateway.pool.fetchval(
                "SELECT status FROM tool_calls WHERE call_id = $1", in_flight.payload.call_id
            )
            == "executing"
        )
    finally:
        await peer.close()  # the peer "dies": its lock goes with its connection

    found = await answers(gateway.urls, {run_id}, lambda f: len(f) >= 2)
    (late,) = of_call(found, in_flight.payload.call_id)
    assert late.payload.code == "E-MCP-CALL-UNKNOWN"
    assert len(found) == 2
    rows = await gateway.pool.fetch(
        "SELECT status, outcome_code FROM tool_calls WHERE run_id = $1", run_id
    )
    assert {(r["status"], r["outcome_code"]) for r in rows} == {("failed", "E-MCP-CALL-UNKNOWN")}


async def test_a_provider_that_cannot_start_raises_session_unavailable() -> None:
    broken = Tool.model_validate(
        {
            **status_tool_body(),
            "provider": "broken",
            "name": "status__broken",
            "transport": {"kind": "stdio", "command": ["/nonexistent/mcp"]},
        }
    )
    sessions = McpSessionPool(open_timeout=5.0)
    try:
        with pytest.raises(SessionUnavailable, match="broken"):
            await sessions.call(PROJECT, broken, {"service": "a"})
        assert sessions.opened == {}
    finally:
        await sessions.close()


async def test_a_session_whose_server_died_is_reopened_on_the_next_call() -> None:
    tool = Tool.model_validate(status_tool_body())
    before = demo_servers()
    sessions = McpSessionPool()
    try:
        first = await sessions.call(PROJECT, tool, {"service": "a"})
        assert first.structured == {"service": "a", "status": "healthy", "checks": 3}
        (server,) = demo_servers() - before
        os.kill(server, 9)
        await wait_for(lambda: server not in demo_servers(), message="the server to exit")
        await asyncio.sleep(0.2)

        again = await sessions.call(PROJECT, tool, {"service": "b"})

        assert again.structured == {"service": "b", "status": "healthy", "checks": 3}
        assert sessions.opened == {"demo": 2}
        (replacement,) = demo_servers() - before
        assert replacement != server
    finally:
        await sessions.close()
    await wait_for(lambda: not (demo_servers() - before), message="servers stopped on close")


async def test_a_groups_answers_are_appended_only_for_the_calls_it_still_held(
    gateway: Gateway,
) -> None:
    """`record` closes the calls, appends their answers and claims in one statement: a
    call declared unknown meanwhile (no longer `executing` under this executor) keeps
    its status and gets no second answer."""
    executor_id = unique("mcp_gateway-recorder-")
    db = ExecutorConnection(gateway.pool, executor_id)
    run_id = unique("run-")
    kept, taken = ask(PROJECT, run_id, unique("call-")), ask(PROJECT, run_id, unique("call-"))
    try:
        async with db.use():
            pass  # its liveness lock is held from here on: no peer sweeps its calls
        for asked in (kept, taken):
            await _left_executing(gateway, asked, executor_id)
        await gateway.pool.execute(
            "UPDATE tool_calls SET status = 'failed', outcome_code = 'E-MCP-CALL-UNKNOWN' "
            "WHERE call_id = $1",
            taken.payload.call_id,
        )
        finished = [
            FinishedCall(
                ClaimedCall(requested_call(asked), REVISION),
                CallResult({"status": "ok"}),
                1.0,
            )
            for asked in (kept, taken)
        ]
        answered, claimed = await call_transactions.record(db, finished)
    finally:
        await db.close()

    assert (answered, claimed) == (1, call_transactions.NOTHING)
    rows = await gateway.pool.fetch(
        "SELECT call_id, status, outcome_code FROM tool_calls WHERE run_id = $1", run_id
    )
    assert {(r["call_id"], r["status"], r["outcome_code"]) for r in rows} == {
        (kept.payload.call_id, "succeeded", None),
        (taken.payload.call_id, "failed", "E-MCP-CALL-UNKNOWN"),
    }
    streams = await gateway.pool.fetch(
        "SELECT stream_id FROM events WHERE stream_id = ANY($1::text[])",
        [kept.payload.call_id, taken.payload.call_id],
    )
    assert [r["stream_id"] for r in streams] == [kept.payload.call_id]


def ask(*args: Any, **kwargs: Any) -> Envelope[ToolCallRequested]:
    """A request asked by the module's agent revision."""
    return request(*args, revision=REVISION, **kwargs)


async def test_a_closed_executor_connection_frees_its_lock_in_a_pool_that_resets_nothing(
    kafka_ready: StackUrls,
) -> None:
    """Service pools skip asyncpg's session reset (`create_pool`): the executor releases its
    liveness lock itself, so a peer can declare its calls gone, and the pooled connection
    it handed back holds nothing."""
    pool = await create_pool(kafka_ready.database, "public", max_size=1)
    executor_id = unique("mcp_gateway-closing-")
    peer = await asyncpg.connect(kafka_ready.database)
    try:
        db = ExecutorConnection(pool, executor_id)
        async with db.use() as conn:
            await conn.execute("SELECT 1")
        taken = "SELECT pg_try_advisory_lock($1, $2)"
        assert not await peer.fetchval(taken, LOCK_CLASS, liveness_key(executor_id))
        await db.close()
        # The pool's only connection is the one the executor held: it holds no lock now.
        async with pool.acquire() as reused:
            held = await reused.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()"
            )
        assert held == 0
        assert await peer.fetchval(taken, LOCK_CLASS, liveness_key(executor_id))
    finally:
        await peer.close()
        await pool.close()

"""The runtime with an OpenAI-compatible agent against a local fake server, in one process.

The step's LLM call holds no transaction (the run's row can be locked by anyone while
the server stalls); a refused tool call reaches the model as an error result; an agent
that keeps three earlier turns sees exactly the last three of its own chat; output that
never fits the agent's schema fails the run with `E-SCHEMA-001` after three re-asks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from awooop.contracts.events.payloads.gateway import ToolCallBlocked
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.runner import ServiceRunner
from awooop.runtime.app import spec
from awooop.security.tenant_credentials import env_variable_name
from support.contracts import agent_body, publish_contracts, status_tool_body
from support.fake_llm import FakeLLM
from support.infra import StackUrls, migrated, unique
from support.runtime_inputs import gateway_answer, message, send
from support.topic_reader import TopicReader

pytestmark = pytest.mark.integration

KEY = "sk-test-not-a-real-key"


def _llm_agent(base_url: str, **overrides: Any) -> dict[str, Any]:
    body = agent_body()
    body["provider"] = {
        "kind": "openai_compatible",
        "model": "fake-model",
        "base_url": base_url,
        "api_key": "env:LLM_KEY",
    }
    body["system_prompt"] = "You answer about the demo estate."
    body.update(overrides)
    return body


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(default_reply="fine") as fake:
        yield fake


@pytest.fixture
async def runtime(kafka_ready: StackUrls) -> AsyncIterator[ServiceRunner]:
    runner = ServiceRunner(spec(), kafka_ready.settings())
    await migrated(kafka_ready.database, runner.spec)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def _project(urls: StackUrls, llm: FakeLLM, **agent: Any) -> str:
    project = unique("rtl")
    os.environ[env_variable_name(project, "LLM_KEY")] = KEY
    documents = {"demo-agent": _llm_agent(llm.base_url, **agent), "status": status_tool_body()}
    await publish_contracts(urls.settings(), project, documents)
    return project


async def _wait_for_view(runner: ServiceRunner, project: str) -> None:
    assert runner.contracts is not None
    for _ in range(200):
        if runner.contracts.view.agent(project, "demo-agent") is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the runtime never saw the project's agent")


async def _say(urls: StackUrls, project: str, user: str, text: str, chat: str) -> Envelope[Any]:
    sent = message(project, user, text, chat=chat)
    key = f"{project}:{sent.payload.platform_subject_id}"
    await send(urls, Topics.INGRESS_EVENTS.name, key, sent)
    return sent


def _ended(run_id: str) -> Any:
    def done(seen: list[Envelope[Any]]) -> bool:
        return any(
            e.correlation_id == run_id and e.event_type in ("run.completed", "run.failed")
            for e in seen
        )

    return done


async def test_an_llm_call_holds_no_transaction_while_the_server_stalls(
    kafka_ready: StackUrls, runtime: ServiceRunner, llm: FakeLLM
) -> None:
    project = await _project(kafka_ready, llm)
    await _wait_for_view(runtime, project)
    llm.stall()
    async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
        sent = await _say(kafka_ready, project, "7", "how is checkout?", "7")
        assert await asyncio.to_thread(llm.waiting.wait, 20), "the step never called the server"
        admin = await asyncpg.connect(kafka_ready.database)
        try:
            schema = runtime.spec.service
            await asyncio.sleep(0.6)  # the call has been held longer than any check below
            for _ in range(5):  # while the call is held, over a little while
                async with admin.transaction():
                    # Nobody holds the run's row: the step committed before it called.
                    row = await admin.fetchrow(
                        f'SELECT state FROM "{schema}".runs WHERE run_id = $1 FOR UPDATE NOWAIT',
                        sent.event_id,
                    )
                assert row is not None
                # And no session of the runtime's role sits in an open transaction while
                # the call is held (other work's transactions pause between statements
                # for far less than the held call lasts).
                idle = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 "
                    " AND state LIKE 'idle in transaction%' "
                    " AND state_change < now() - interval '500 milliseconds'",
                    f"awooop_{schema}",
                )
                assert idle == 0
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        llm.release()
        seen = await reader.until(_ended(str(sent.event_id)))
    completed = _of(seen, str(sent.event_id), "run.completed")
    assert completed.payload.reply == "fine"
    report = completed.payload.step
    assert report is not None
    assert report.model == "fake-model"
    assert llm.authorizations[-1] == f"Bearer {KEY}"


async def test_a_refused_tool_call_reaches_the_model_as_an_error_result(
    kafka_ready: StackUrls, runtime: ServiceRunner, llm: FakeLLM
) -> None:
    project = await _project(kafka_ready, llm)
    await _wait_for_view(runtime, project)
    llm.answer_tool_call("status__demo", {"service": "checkout"}, call_id="c1")
    llm.answer_reply("I could not check it.", tokens_in=30, tokens_out=6)
    async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
        sent = await _say(kafka_ready, project, "8", "check checkout", "8")
        run_id = str(sent.event_id)
        seen = await reader.until(
            lambda s: any(
                e.correlation_id == run_id and e.event_type == "run.tool_call_requested" for e in s
            )
        )
        request = _of(seen, run_id, "run.tool_call_requested")
        assert request.payload.tool == "status__demo"
        assert request.payload.step.model == "fake-model"
        await send(kafka_ready, Topics.GATEWAY_EVENTS.name, run_id, _blocked(request))
        seen = await reader.until(_ended(run_id))
    completed = _of(seen, run_id, "run.completed")
    assert completed.payload.reply == "I could not check it."
    assert completed.payload.step.tokens_in == 30
    second = llm.requests[-1]["messages"]
    tool_turn = next(m for m in second if m["role"] == "tool")
    assert '"error": "blocked"' in tool_turn["content"]
    asked = next(m for m in second if m["role"] == "assistant" and m.get("tool_calls"))
    assert asked["tool_calls"][0]["function"]["name"] == "status__demo"


async def test_an_agent_keeping_three_turns_sees_the_last_three_of_its_own_chat(
    kafka_ready: StackUrls, runtime: ServiceRunner, llm: FakeLLM
) -> None:
    project = await _project(kafka_ready, llm, history_turns=3)
    await _wait_for_view(runtime, project)
    async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
        for n in range(3):
            llm.answer_reply(f"answer {n}")
            sent = await _say(kafka_ready, project, "9", f"question {n}", "chat-a")
            await reader.until(_ended(str(sent.event_id)))
        llm.answer_reply("other chat answer")
        sent = await _say(kafka_ready, project, "10", "other chat question", "chat-b")
        await reader.until(_ended(str(sent.event_id)))
        llm.answer_reply("answer 3")
        sent = await _say(kafka_ready, project, "9", "question 3", "chat-a")
        await reader.until(_ended(str(sent.event_id)))
    seen_last = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"]]
    assert seen_last == [
        ("system", "You answer about the demo estate."),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "answer 2"),
        ("user", "question 3"),
    ]


async def test_output_never_matching_the_schema_fails_the_run_after_three_reasks(
    kafka_ready: StackUrls, runtime: ServiceRunner, llm: FakeLLM
) -> None:
    schema = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    project = await _project(kafka_ready, llm, output_schema=schema)
    await _wait_for_view(runtime, project)
    for _ in range(4):
        llm.answer_reply("not json at all", tokens_in=10, tokens_out=5)
    async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
        sent = await _say(kafka_ready, project, "11", "status please", "11")
        seen = await reader.until(_ended(str(sent.event_id)))
    failed = _of(seen, str(sent.event_id), "run.failed")
    assert failed.payload.code == "E-SCHEMA-001"
    assert failed.payload.step.schema_retries == 3
    assert failed.payload.step.tokens_in == 40
    assert len(llm.requests) == 4


def _of(seen: list[Envelope[Any]], run_id: str, event_type: str) -> Envelope[Any]:
    return next(e for e in seen if e.correlation_id == run_id and e.event_type == event_type)


def _blocked(request: Envelope[Any]) -> Envelope[Any]:
    blocked = ToolCallBlocked(
        call_id=request.payload.call_id,
        gate=2,
        code="E-MCP-GATE-002",
        revisions=(request.payload.revisions[0],),
    )
    return gateway_answer(request, blocked)


async def test_a_run_timing_out_mid_call_counts_its_reservation_as_spent(
    kafka_ready: StackUrls, runtime: ServiceRunner, llm: FakeLLM
) -> None:
    """The model never answers before the run's timeout: the timeout ends the run, and the
    step's reservation is settled whole (the call may have cost it), never left reserved."""
    budget = {
        "family": "budget",
        "schema_version": 1,
        "limits": [{"scope": "tenant", "period": "daily", "max_tokens": 1_000_000}],
        "prices": [{"model": "fake-model", "input_per_million": "1", "output_per_million": "2"}],
        "currency": "USD",
        "kill_switch_at": "0.9",
    }
    project = unique("rtl")
    os.environ[env_variable_name(project, "LLM_KEY")] = KEY
    documents = {
        "demo-agent": _llm_agent(llm.base_url, run_timeout_seconds=2, step_timeout_seconds=2),
        "status": status_tool_body(),
        "budget": budget,
    }
    await publish_contracts(kafka_ready.settings(), project, documents)
    await _wait_for_view(runtime, project)
    assert runtime.contracts is not None
    for _ in range(200):
        if runtime.contracts.view.budget(project) is not None:
            break
        await asyncio.sleep(0.05)
    llm.stall()
    try:
        async with TopicReader(kafka_ready.kafka, Topics.RUN_EVENTS.name) as reader:
            sent = await _say(kafka_ready, project, "12", "slow one", "12")
            run_id = str(sent.event_id)
            seen = await reader.until(
                lambda s: any(
                    e.correlation_id == run_id and e.event_type == "run.timed_out" for e in s
                )
            )
    finally:
        llm.release()
    assert _of(seen, run_id, "run.timed_out").payload.code == "E-RUN-TIMEOUT"
    assert runtime.pool is not None
    rows = await runtime.pool.fetch(
        "SELECT state, tokens, settled_tokens FROM budget_reservations WHERE run_id = $1",
        sent.event_id,
    )
    assert [(r["state"], r["settled_tokens"]) for r in rows] == [("settled", rows[0]["tokens"])]
    reserved = await runtime.pool.fetchval(
        "SELECT sum(reserved_tokens) FROM budget_ledger WHERE project_id = $1", project
    )
    assert reserved == 0

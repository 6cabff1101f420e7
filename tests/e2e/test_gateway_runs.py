"""Tool calls inside real runs, through every process of the platform and real MCP servers.

One platform serves the module. Its gateway spawns the demo MCP server over stdio for
each project, and the test runs one more over streamable HTTP; both write what they
serve to one journal, so every count here is taken where the call is executed.

Tenants: `gwsh`, `gwsu` and `gwac` in shadow, suggest and active mode, each with a
reader, a writer and an admin agent (one bot each) for the mode table; `gwht`, whose
status tool is reached over HTTP; `gwse`, whose agents echo planted secrets back and
read a log longer than 16 KiB, and on which the secrets property test asks the gateway
directly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from hypothesis import HealthCheck, given, settings

from awooop.cli.send import telegram_record
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.topics import ALL_TOPICS, Topics
from awooop.security.redaction import MAX_DISPLAY_BYTES
from support.contracts import (
    agent_body,
    agent_ref,
    deployed_tool,
    granting,
    policy_body,
    status_tool_body,
    telegram_binding_body,
)
from support.demo_mcp import calls, demo_http_server, read_journal, sessions
from support.gateway import request
from support.platform_procs import RunningPlatform, own_platform
from support.secret_strategies import PlantedDocument, planted_documents
from support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e

CODEC = EnvelopeCodec()
MODES = {"gwsh": "shadow", "gwsu": "suggest", "gwac": "active"}
KINDS = {  # agent: (tool, arguments of its one call, the project's own marker filled in)
    "reader": ("status__demo", {"service": "{project}"}),
    "writer": ("restart_service__demo", {"service": "{project}"}),
    "admin": ("wipe_volume__demo", {"volume": "{project}"}),
}
EXPECTED = {  # (mode, agent): the run's end, and whether the server ran the call
    ("shadow", "reader"): ("completed", True),
    ("shadow", "writer"): ("completed", False),  # refused at gate 3, and the run goes on
    ("shadow", "admin"): ("completed", False),
    ("suggest", "reader"): ("completed", True),
    ("suggest", "writer"): ("waiting_approval", False),
    ("suggest", "admin"): ("waiting_approval", False),
    ("active", "reader"): ("completed", True),
    ("active", "writer"): ("completed", True),
    ("active", "admin"): ("waiting_approval", False),
}
PLANTED = {"note": "card 4111 1111 1111 1111, mail ops@example.com", "password": "hunter2-xyz"}
SECRETS = ("4111 1111 1111 1111", "ops@example.com", "hunter2-xyz")
ECHO_AGENT = granting(
    agent_body(
        "echo",
        script=[
            {"call_tool": "echo__demo", "arguments": {"payload": PLANTED}},
            {"reply": "Echo: {result}"},
        ],
    ),
    ("echo__demo", "read"),
)
USERS = {"reader": "601", "writer": "602", "admin": "603"}
_BOTS = itertools.count(7401)
_UPDATES = itertools.count(1)


def _document(project: str, contract: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"project": project, "contract": contract, "body": body}


def _agent(agent_id: str, tool: str, arguments: dict[str, Any], scope: str) -> dict[str, Any]:
    script = [{"call_tool": tool, "arguments": arguments}, {"reply": "Done: {result}"}]
    return granting(agent_body(agent_id, script=script), (tool, scope))


def _write_tenant(home: Path, project: str, documents: list[dict[str, Any]]) -> Path:
    folder = home / "tenants" / project
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (folder / f"{document['contract']}.yaml").write_text(yaml.safe_dump(document))
    return folder


def _tools(project: str) -> list[dict[str, Any]]:
    return [
        _document(project, "status-demo", status_tool_body()),
        *(
            _document(project, name.replace("_", "-"), deployed_tool(name))
            for name in ("restart_service", "wipe_volume", "echo", "tail_log")
        ),
    ]


def _mode_tenant(home: Path, project: str, mode: str, bots: dict[tuple[str, str], str]) -> Path:
    documents = [*_tools(project), _document(project, "policy", policy_body(mode))]
    for kind, (tool, arguments) in KINDS.items():
        scope = {"reader": "read", "writer": "write", "admin": "admin"}[kind]
        filled = {key: value.format(project=project) for key, value in arguments.items()}
        bot = bots[(project, kind)] = str(next(_BOTS))
        documents.append(_document(project, kind, _agent(kind, tool, filled, scope)))
        documents.append(_document(project, f"telegram-{kind}", telegram_binding_body(bot, kind)))
    return _write_tenant(home, project, documents)


class Module:
    """What the tests share: the platform, its journal, and each agent's bot."""

    def __init__(self, platform: RunningPlatform, journal: Path, bots: dict[tuple[str, str], str]):
        self.platform = platform
        self.journal = journal
        self.bots = bots
        self.planted: list[tuple[str, PlantedDocument]] = []

    @property
    def bootstrap(self) -> str:
        return self.platform.env["AWOOOP_KAFKA_BOOTSTRAP"]

    def served(self) -> list[dict[str, Any]]:
        return calls(read_journal(self.journal))


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Module]:
    home = tmp_path_factory.mktemp("gateway-runs")
    journal = home / "mcp-journal.jsonl"
    bots: dict[tuple[str, str], str] = {}
    with (
        demo_http_server(journal) as url,
        own_platform(home, AWOOOP_DEMO_MCP_JOURNAL=str(journal)) as running,
    ):
        folders = [_mode_tenant(home, project, mode, bots) for project, mode in MODES.items()]
        http_status = {**status_tool_body(), "transport": {"kind": "streamable_http", "url": url}}
        bots[("gwht", "reader")] = bot = str(next(_BOTS))
        folders.append(
            _write_tenant(
                home,
                "gwht",
                [
                    _document("gwht", "status-demo", http_status),
                    _document("gwht", "policy", policy_body("active")),
                    _document(
                        "gwht",
                        "reader",
                        _agent("reader", "status__demo", {"service": "gwht"}, "read"),
                    ),
                    _document("gwht", "telegram-reader", telegram_binding_body(bot, "reader")),
                ],
            )
        )
        tail = _agent("tail", "tail_log__demo", {"service": "gwse", "lines": 2000}, "read")
        bots[("gwse", "echo")], bots[("gwse", "tail")] = str(next(_BOTS)), str(next(_BOTS))
        folders.append(
            _write_tenant(
                home,
                "gwse",
                [
                    *_tools("gwse"),
                    _document("gwse", "policy", policy_body("active")),
                    _document("gwse", "agent-echo", ECHO_AGENT),
                    _document("gwse", "agent-tail", tail),
                    _document(
                        "gwse",
                        "telegram-echo",
                        telegram_binding_body(bots[("gwse", "echo")], "echo"),
                    ),
                    _document(
                        "gwse",
                        "telegram-tail",
                        telegram_binding_body(bots[("gwse", "tail")], "tail"),
                    ),
                ],
            )
        )
        running.cli("contracts", "onboard", *(str(folder) for folder in folders))
        yield Module(running, journal, bots)


async def _say(module: Module, project: str, kind: str, *texts: str, user: str = "601") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=module.bootstrap, acks="all")
    await producer.start()
    try:
        for text in texts:
            key, value = telegram_record(
                project=project,
                bot=module.bots[(project, kind)],
                update_id=next(_UPDATES),
                user=user,
                text=text,
            )
            await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
    finally:
        await producer.stop()


def _runs(module: Module, project: str) -> list[dict[str, Any]]:
    with module.platform.api(project) as client:
        return list(client.get("/v1/runs", params={"limit": 200}).json()["runs"])


async def _ended_as(module: Module, project: str, agent: str, state: str) -> dict[str, Any]:
    for _ in range(300):
        found = [
            r for r in _runs(module, project) if r["agent_id"] == agent and r["state"] == state
        ]
        if found:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {state} run of {project}/{agent}: {_runs(module, project)}")


async def test_the_mode_table_in_real_runs(module: Module) -> None:
    for project in MODES:
        for kind in KINDS:
            await _say(module, project, kind, f"please, {kind}", user=USERS[kind])
    for project, mode in MODES.items():
        for kind in KINDS:
            state, executed = EXPECTED[(mode, kind)]
            run = await _ended_as(module, project, kind, state)
            tool = KINDS[kind][0].removesuffix("__demo")
            at_server = [
                c
                for c in module.served()
                if c["tool"] == tool and project in c["arguments"].values()
            ]
            assert bool(at_server) == executed, (project, kind, at_server)
            with module.platform.api(project) as client:
                detail = client.get(f"/v1/runs/{run['run_id']}").json()
                (call,) = client.get("/v1/mcp-calls", params={"run_id": run["run_id"]}).json()[
                    "items"
                ]
            texts = " | ".join(entry["summary"]["text"] for entry in detail["timeline"])
            if mode == "shadow" and kind != "reader":
                assert (call["status"], call["code"]) == ("blocked", "E-MCP-GATE-005"), call
                assert "refused at gate 3 (E-MCP-GATE-005)" in texts, texts
            elif state == "waiting_approval":
                assert call["status"] == "awaiting_approval", call
                assert call["action_hash"], call
            else:
                assert call["status"] == "succeeded", call


async def test_calls_over_stdio_and_http_reuse_one_session_per_server(module: Module) -> None:
    for user in ("611", "613", "614"):  # three people: three runs, none double-texting
        await _say(module, "gwht", "reader", "status?", user=user)
    await _say(module, "gwac", "reader", "again", user="612")
    for _ in range(300):
        completed = [r for r in _runs(module, "gwht") if r["state"] == "completed"]
        if len(completed) >= 3:
            break
        await asyncio.sleep(0.2)
    assert len(completed) == 3
    journal = read_journal(module.journal)
    http_calls = [c for c in calls(journal) if c["transport"] == "http"]
    assert len(http_calls) == 3
    assert {c["arguments"]["service"] for c in http_calls} == {"gwht"}
    assert len([s for s in sessions(journal) if s["transport"] == "http"]) == 1
    stdio_sessions = [s for s in sessions(journal) if s["transport"] == "stdio"]
    stdio_calls = [c for c in calls(journal) if c["transport"] == "stdio"]
    # One session per project that called a tool over stdio, however many calls it made.
    assert len(stdio_sessions) <= len(MODES) + 1 < len(stdio_calls)


async def _run_events(module: Module, project: str, count: int) -> list[Any]:
    async with TopicReader(module.bootstrap, Topics.RUN_EVENTS.name) as reader:
        seen = await reader.until(
            lambda s: (
                sum(e.project_id == project and e.event_type == "run.completed" for e in s) >= count
            ),
            within=60,
        )
    return [e for e in seen if e.project_id == project]


async def test_results_reach_the_run_redacted_and_long_ones_truncated(module: Module) -> None:
    await _say(module, "gwse", "echo", "echo please", user="621")
    await _say(module, "gwse", "tail", "tail please", user="622")
    events = await _run_events(module, "gwse", 2)
    accepted = [e.payload for e in events if e.event_type == "run.tool_result_accepted"]
    echoed = next(p.result for p in accepted if isinstance(p.result, dict))
    assert echoed == {
        "payload": {
            "note": "card [REDACTED:card], mail [REDACTED:email]",
            "password": "[REDACTED:secret]",
        }
    }
    tailed = next(p.result for p in accepted if isinstance(p.result, str))
    assert len(tailed.encode()) <= MAX_DISPLAY_BYTES
    assert tailed.endswith("bytes]")
    assert "…[truncated " in tailed
    replies = [e.payload.reply for e in events if e.event_type == "run.completed"]
    assert any("[REDACTED:card]" in reply for reply in replies)
    for secret in SECRETS:
        assert all(secret not in reply for reply in replies)
    # What the server was given: the arguments as the agent produced them.
    (served,) = [c for c in module.served() if c["tool"] == "echo"]
    assert served["arguments"] == {"payload": PLANTED}


async def _ask_echo(module: Module, planted: PlantedDocument, n: int) -> str:
    asked = request(
        "gwse",
        f"gwse-probe-{n}",
        f"gwse-probe-{n}:0",
        tool="echo__demo",
        arguments={"payload": planted.document},
        revision=agent_ref(ECHO_AGENT, "agent-echo"),
    )
    producer = AIOKafkaProducer(bootstrap_servers=module.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics.RUN_EVENTS.name,
            CODEC.encode(asked),
            key=asked.correlation_id.encode(),
            headers=record_headers(asked, make_traceparent(asked.trace_id)),
        )
    finally:
        await producer.stop()
    return asked.payload.call_id


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(planted=planted_documents())
def test_planted_secrets_are_asked_for_at_any_depth(
    module: Module, planted: PlantedDocument
) -> None:
    """Each example asks the echo tool with secrets planted at any depth; the next test
    searches every event, log line and read-model row for them."""
    n = len(module.planted)
    call_id = asyncio.run(_ask_echo(module, planted, n))
    module.planted.append((call_id, planted))


async def test_no_planted_secret_reaches_an_event_a_log_or_a_read_model(module: Module) -> None:
    assert module.planted, "the property test above runs first"
    wanted = {call_id for call_id, _ in module.planted}
    async with TopicReader(module.bootstrap, Topics.GATEWAY_EVENTS.name) as reader:
        seen = await reader.until(lambda s: wanted <= {e.stream_id for e in s}, within=90)
    answers = {e.stream_id: e for e in seen if e.stream_id in wanted}
    for call_id in wanted:
        answer = answers[call_id]
        assert answer.event_type == "gateway.tool_call_succeeded", answer.payload
        assert answer.payload.redactions, answer.payload
    await asyncio.sleep(2.0)  # the projector's rows and the processes' last log lines

    texts = await _every_record_but_the_requests(module.bootstrap)
    texts.append(await _every_read_model_row(module.platform))
    texts.extend(p.read_text(errors="replace") for p in module.platform.platform.logs.glob("*.log"))
    haystack = "\n".join(texts)
    assert "gwse-probe-0" in haystack  # the search reads what the calls left
    for _, planted in module.planted:
        for hidden in planted.hidden:
            assert hidden not in haystack, hidden
            assert json.dumps(hidden)[1:-1] not in haystack, hidden


async def _every_record_but_the_requests(bootstrap: str) -> list[str]:
    """Every record value of every topic, as text, but the requests themselves (on
    `run.events` arguments travel as the agent produced them, by design)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    found: list[str] = []
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(t.name, p)
            for t in ALL_TOPICS
            if t.name in existing
            for p in range(t.partitions)
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        left = {tp for tp in partitions if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    headers = dict(record.headers)
                    if headers.get("event_type") != b"run.tool_call_requested":
                        found.append((record.value or b"").decode("utf-8", errors="replace"))
                    if record.offset + 1 >= ends[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    return found


async def _every_read_model_row(platform: RunningPlatform) -> str:
    conn = await asyncpg.connect(platform.env["AWOOOP_DATABASE_URL"])
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'projector' AND table_type = 'BASE TABLE'"
        )
        rows = []
        for (table,) in tables:
            rows += await conn.fetch(f'SELECT t::text AS row FROM projector."{table}" t')
    finally:
        await conn.close()
    return "\n".join(r["row"] for r in rows)

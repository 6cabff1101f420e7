"""The runtime's rules through real processes (the five services as processes, the
embedded stack): each double-texting rule, progress messages, and what each mode lets a
chat see. Steps are slowed (`AWOOOP_SCRIPTED_STEP_DELAY_MS`) so a run stays active while
its person writes again; one platform serves every test of the module.

Tenants: `tq` enqueues, `ti` interrupts, `tr` rejects (each in `active` mode, progress
after 1 s), and `tsh` in `shadow` mode. Replies of active tenants reach the platform's
fake chat API, which counts what it received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from awooop.cli import dev_chat
from awooop.cli.send import telegram_record
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from awooop.infra.settings import Settings
from awooop.ingress.bridges.app import create_bridge_app
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.kafka_publisher import kafka_publish
from awooop.ingress.bridges.signatures import slack_signature
from support.platform_procs import DEMO_TENANTS, RunningPlatform, own_platform
from support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e

TENANTS = {
    "tq": ("7301", "enqueue", "active"),
    "ti": ("7302", "interrupt", "active"),
    "tr": ("7303", "reject", "active"),
    "tsh": ("7304", "reject", "shadow"),
}
BOT_TOKENS = {
    f"AWOOOP_TENANT_{project.upper()}_TELEGRAM_BOT_TOKEN": f"{bot}:token-of-{project}"
    for project, (bot, _, _) in TENANTS.items()
} | {"AWOOOP_TENANT_TSL_SLACK_BOT_TOKEN": "xoxb-token-of-tsl"}
STEP_DELAY_MS = "1200"
_UPDATES = itertools.count(1)


def _tenant_files(home: Path, project: str, bot: str, rule: str, mode: str) -> Path:
    folder = home / "tenants" / project
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("agent.yaml", "tool-status.yaml", "channel-binding-telegram-7000.yaml"):
        document = yaml.safe_load((DEMO_TENANTS / "demo" / name).read_text())
        document["project"] = project
        body = document["body"]
        if body["family"] == "channel_binding":
            body["channel"]["bot_id"] = bot
        if body["family"] == "agent":
            body["double_texting"] = rule
            body["progress_after_seconds"] = 1
        (folder / name).write_text(yaml.safe_dump(document))
    policy = yaml.safe_load((DEMO_TENANTS / "demo" / "policy.yaml").read_text())
    policy["project"] = project
    policy["body"]["mode"] = mode
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy))
    return folder


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    home = tmp_path_factory.mktemp("rules")
    with own_platform(home, AWOOOP_SCRIPTED_STEP_DELAY_MS=STEP_DELAY_MS, **BOT_TOKENS) as running:
        folders = [_tenant_files(home, p, *spec) for p, spec in TENANTS.items()]
        running.cli("contracts", "onboard", *(str(folder) for folder in folders))
        yield running


def _bootstrap(platform: RunningPlatform) -> str:
    return platform.env["AWOOOP_KAFKA_BOOTSTRAP"]


async def _say(platform: RunningPlatform, project: str, bot: str, user: str, *texts: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(platform), acks="all")
    await producer.start()
    try:
        for text in texts:
            key, value = telegram_record(
                project=project, bot=bot, update_id=next(_UPDATES), user=user, text=text
            )
            await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()


async def _delivered(platform: RunningPlatform, chat: str, text: str) -> list[dict[str, Any]]:
    """The fake chat's accepted calls carrying `text` to `chat`, once there is one (and a
    second more, for anything delivered twice)."""
    url = platform.platform.fake_chat_url
    for _ in range(100):
        if any(c["text"] == text and c["ok"] for c in dev_chat.received(url, chat=chat)):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    return [c for c in dev_chat.received(url, chat=chat) if c["text"] == text and c["ok"]]


def _of(seen: list[Envelope[Any]], project: str) -> list[Envelope[Any]]:
    return [e for e in seen if e.project_id == project]


def _ended(seen: list[Envelope[Any]], project: str, count: int) -> bool:
    ends = ("run.completed", "run.failed", "run.cancelled", "run.timed_out")
    return sum(e.event_type in ends for e in _of(seen, project)) >= count


async def _watch(
    platform: RunningPlatform, project: str, ended: int, finals: int
) -> tuple[list[Envelope[Any]], list[Envelope[Any]]]:
    """The project's run events once `ended` runs ended, and its outbound messages once
    `finals` final messages were said (and a second more, for anything said twice)."""
    async with TopicReader(_bootstrap(platform), Topics.RUN_EVENTS.name) as runs:
        seen = await runs.until(lambda s: _ended(s, project, ended), within=60)
    async with TopicReader(_bootstrap(platform), Topics.CHANNEL_OUTBOUND.name) as outbound:

        def all_said(s: list[Envelope[Any]]) -> bool:
            return sum(m.payload.kind == "final" for m in _of(s, project)) >= finals

        await outbound.until(all_said, within=30)
        await asyncio.sleep(1.0)
        said = await outbound.until(lambda _s: True, within=5)
    return _of(seen, project), _of(said, project)


async def test_enqueued_double_texts_run_in_order_after_the_active_run(
    platform: RunningPlatform,
) -> None:
    await _say(platform, "tq", "7301", "501", "first", "second", "third")
    events, said = await _watch(platform, "tq", 3, finals=3)
    started = [e for e in events if e.event_type == "run.started"]
    completed = [e for e in events if e.event_type == "run.completed"]
    queued = [e for e in events if e.event_type == "run.message_queued"]
    assert len(started) == len(completed) == 3
    assert len(queued) == 2
    # Each waiting message started only once the run before it had completed.
    order = sorted(events, key=lambda e: (e.occurred_at, e.stream_seq))
    kinds = [e.event_type for e in order if e.event_type in ("run.started", "run.completed")]
    assert kinds == ["run.started", "run.completed"] * 3
    finals = [m for m in said if m.payload.kind == "final"]
    assert sorted(m.correlation_id for m in finals) == sorted(e.correlation_id for e in completed)
    # And they answer the messages in the order they were sent.
    async with TopicReader(_bootstrap(platform), Topics.INGRESS_EVENTS.name) as ingress:
        received = await ingress.until(
            lambda s: sum(e.project_id == "tq" for e in s) >= 3, within=10
        )
    texts = {str(e.event_id): e.payload.text for e in received if e.project_id == "tq"}
    started_in_order = sorted(started, key=lambda e: (e.occurred_at, e.stream_seq))
    assert [texts[e.correlation_id] for e in started_in_order] == ["first", "second", "third"]


async def test_an_interrupting_double_text_cancels_the_active_run(
    platform: RunningPlatform,
) -> None:
    await _say(platform, "ti", "7302", "502", "first", "actually, this")
    events, said = await _watch(platform, "ti", 2, finals=1)
    cancelled = [e for e in events if e.event_type == "run.cancelled"]
    completed = [e for e in events if e.event_type == "run.completed"]
    assert [e.payload.code for e in cancelled] == ["E-RUN-INTERRUPTED"]
    assert len(completed) == 1
    assert completed[0].correlation_id != cancelled[0].correlation_id
    # Only the run that finished answers; the interrupted one says nothing.
    finals = [m for m in said if m.payload.kind == "final"]
    assert [m.correlation_id for m in finals] == [completed[0].correlation_id]


async def test_a_rejected_double_text_is_told_the_agent_is_busy_and_progress_is_sent(
    platform: RunningPlatform,
) -> None:
    await _say(platform, "tr", "7303", "503", "first", "hello??")
    events, said = await _watch(platform, "tr", 1, finals=1)
    rejected = [e for e in events if e.event_type == "run.message_rejected"]
    (completed,) = [e for e in events if e.event_type == "run.completed"]
    assert [e.payload.code for e in rejected] == ["E-RUN-BUSY"]
    interim = [m.payload.text for m in said if m.payload.kind == "interim"]
    assert "Still working on your last message." in interim
    # The run took well over its 1 s progress interval: the claim loop's timer spoke.
    assert any(text.startswith("Still working: ") for text in interim)
    (final,) = [m for m in said if m.payload.kind == "final"]
    assert final.payload.text == completed.payload.reply
    assert final.trace_id == completed.trace_id
    assert final.payload.chat_id == "503"
    # The reply reached the chat once, as an answer to the message that started the run.
    (call,) = await _delivered(platform, "503", final.payload.text)
    assert call["method"] == "sendMessage"
    assert call["reply_to"] is not None
    assert str(call["reply_to"]) == final.payload.reply_to


async def test_a_shadow_run_sends_nothing_to_its_chat(platform: RunningPlatform) -> None:
    await _say(platform, "tsh", "7304", "504", "is checkout healthy?")
    events, said = await _watch(platform, "tsh", 1, finals=0)
    (completed,) = [e for e in events if e.event_type == "run.completed"]
    assert completed.payload.suppressed is True
    assert said == []


CARD = "4111 1111 1111 1111"
EMAIL = "ada.lovelace@example.com"
API_KEY = "sk-proj-" + "Q7x2Lm9Pa4Rt8Vb1Nc6Zd3Kf5Hg0Js2W"


async def test_secrets_a_person_types_reach_the_agent_but_no_read_model_or_log(
    platform: RunningPlatform,
) -> None:
    """A message carrying a card number, an e-mail address and an API key: the agent's
    turn holds it as sent, while no row of any read model and no line of any process's
    log holds any of the three (searched as text, table by table, file by file)."""
    text = f"my card {CARD}, mail me at {EMAIL}, our key is {API_KEY}"
    await _say(platform, "tq", "7301", "505", text)
    conn = await asyncpg.connect(platform.env["AWOOOP_DATABASE_URL"])
    try:
        for _ in range(150):
            turn = await conn.fetchval(
                "SELECT text FROM runtime.chat_turns WHERE project_id = 'tq' AND role = 'user' "
                "AND chat_id = '505'"
            )
            shown = await conn.fetchval(
                "SELECT count(*) FROM projector.channel_events WHERE project_id = 'tq' "
                "AND chat_id = '505' AND outcome = 'run_started'"
            )
            done = await conn.fetchval(
                "SELECT count(*) FROM projector.runs WHERE project_id = 'tq' "
                "AND platform_subject_id = 'tq:telegram:505' AND state = 'completed'"
            )
            if turn is not None and shown and done:
                break
            await asyncio.sleep(0.2)
        assert turn == text  # what the agent was given: exactly what was sent
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'projector' AND table_type = 'BASE TABLE'"
        )
        rows = []
        for (table,) in tables:
            rows += await conn.fetch(f'SELECT t::text AS row FROM projector."{table}" t')
    finally:
        await conn.close()
    dumped = "\n".join(r["row"] for r in rows)
    assert "my card" in dumped  # the message's redacted display text is there
    logs = "\n".join(p.read_text(errors="replace") for p in platform.platform.logs.glob("*.log"))
    assert logs  # every process logged something
    for secret in (CARD, CARD.replace(" ", ""), EMAIL, API_KEY):
        assert secret not in dumped
        assert secret not in logs


SLACK_TEAM, SLACK_APP, SLACK_CHANNEL = "T0AWOOP", "A0AWOOP", "C0OPS"
SLACK_SECRET = "signing-secret-of-tsl"


def _slack_tenant(home: Path) -> Path:
    """`tsl`: the demo agent bound to a Slack app's every channel, in `active` mode."""
    folder = _tenant_files(home, "tsl", "7305", "reject", "active")
    (folder / "channel-binding-telegram-7000.yaml").unlink()
    binding = {
        "project": "tsl",
        "contract": "slack",
        "body": {
            "family": "channel_binding",
            "schema_version": 1,
            "agent_id": "demo-agent",
            "channel": {
                "kind": "slack",
                "team_id": SLACK_TEAM,
                "app_id": SLACK_APP,
                "channel_ids": [],
                "bot_token": "env:SLACK_BOT_TOKEN",
                "signing_secret": "env:SLACK_SIGNING_SECRET",
            },
        },
    }
    (folder / "channel-binding-slack.yaml").write_text(yaml.safe_dump(binding))
    return folder


def _signed(body: bytes, retry: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(SLACK_SECRET, stamp, body),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return headers


async def test_a_slack_message_through_the_bridge_is_answered_in_its_thread_once(
    platform: RunningPlatform,
) -> None:
    """Slack end to end: the bridge verifies and produces an event callback, Slack's
    retry of it is recorded as `duplicate_of` (one run), and the reply reaches the fake
    Slack API once, in the thread of the person's message."""
    platform.cli("contracts", "onboard", str(_slack_tenant(platform.home)))
    event = {
        "type": "event_callback",
        "team_id": SLACK_TEAM,
        "api_app_id": SLACK_APP,
        "event_id": "Ev0AWOOP01",
        "event_time": int(time.time()),
        "authorizations": [{"user_id": "U0BOT", "is_bot": True}],
        "event": {
            "type": "message",
            "channel": SLACK_CHANNEL,
            "channel_type": "channel",
            "user": "U0ADA",
            "text": "is checkout healthy?",
            "ts": "1765000000.000100",
        },
    }
    body = json.dumps(event).encode()
    config = BridgeConfig(project_id="tsl", slack_signing_secret=SLACK_SECRET)
    async with kafka_publish(Settings.from_env(platform.env).kafka) as publish:
        app = create_bridge_app(config, publish)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as bridge:
            first = await bridge.post("/slack/events", content=body, headers=_signed(body))
            retried = await bridge.post(
                "/slack/events", content=body, headers=_signed(body, retry=1)
            )
    assert (first.status_code, retried.status_code) == (200, 200)

    events, said = await _watch(platform, "tsl", 1, finals=1)
    assert [e.event_type for e in events].count("run.started") == 1
    (final,) = [m for m in said if m.payload.kind == "final"]
    assert (final.payload.chat_id, final.payload.reply_to) == (SLACK_CHANNEL, "1765000000.000100")
    (call,) = await _delivered(platform, SLACK_CHANNEL, final.payload.text)
    assert call["method"] == "chat.postMessage"
    assert call["thread"] == "1765000000.000100"
    with platform.api("tsl") as client:
        shown = client.get("/v1/channel-events", params={"limit": 10}).json()["items"]
    outcomes = sorted(item["outcome"] for item in shown)
    assert outcomes == ["duplicate_of", "run_started"]
    (repeat,) = [item for item in shown if item["outcome"] == "duplicate_of"]
    (message,) = [item for item in shown if item["outcome"] == "run_started"]
    assert str(repeat["duplicate_of"]) == str(message["event_id"])

"""Approvals end to end on the whole platform: a write in `suggest` mode waits, a second
person's button press (Telegram `callback_query`, Slack `block_actions`, each fed through
ingress as the provider sends it) grants it, the gateway runs it once (counted in the
demo MCP server's own journal), the run completes, and the request message in the fake
chat is edited in place to say who approved. Then two approval processes race on one
decision: one grant, one execution.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from awooop.approval.api.app import create_api
from awooop.approval.app import token_minter
from awooop.cli import dev_chat
from awooop.cli.send import telegram_callback_record, telegram_record
from awooop.contracts.registries.topics import Topics
from awooop.infra.postgres.pools import create_pool
from awooop.infra.settings import APPROVAL_TOKEN_SIGNING_KEY_FILE, Settings
from awooop.ingress.bridges.app import create_bridge_app
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.kafka_publisher import kafka_publish
from awooop.ingress.bridges.signatures import slack_signature
from awooop.security.api_tokens import mint_api_token
from awooop.security.signing_keys import SigningKey, generate_ed25519_keys
from support.demo_mcp import calls, read_journal
from support.pipeline import wait_for
from support.platform_procs import DEMO_TENANTS, RunningPlatform, own_platform

pytestmark = pytest.mark.e2e

OPS_BOT, OPS_CHAT, ASKER, ALICE = "7200", "-1003000", "3002", "3003"
TEAM, APP, CHANNEL = "T0OPS", "A0OPS", "C0ONCALL"
SLACK_ASKER, SLACK_ALICE = "U0ASKER", "U0ALICE"
SLACK_SECRET = "signing-secret-of-slops"
ENV = {
    "AWOOOP_TENANT_OPS_TELEGRAM_BOT_TOKEN": f"{OPS_BOT}:token-of-ops",
    "AWOOOP_TENANT_SLOPS_SLACK_BOT_TOKEN": "xoxb-token-of-slops",
    "AWOOOP_TENANT_RACE_TELEGRAM_BOT_TOKEN": "7201:token-of-race",
}
_UPDATES = itertools.count(int(time.time()))


def _tenant(home: Path, project: str, binding: dict[str, Any], chat_subjects: list[str]) -> Path:
    """The ops tenant's agent, restart tool and suggest-mode policy under `project`,
    bound by `binding`; alice approves from `chat_subjects`, one approval is enough."""
    folder = home / "tenants" / project
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("agent.yaml", "tool-restart-service.yaml", "policy.yaml"):
        document = yaml.safe_load((DEMO_TENANTS / "ops" / name).read_text())
        document["project"] = project
        if name == "policy.yaml":
            alice = document["body"]["approvers"][0]
            alice["chat_subjects"] = chat_subjects
            alice["api_subject"] = f"operator:alice@{project}"
            document["body"]["approvers"][1]["api_subject"] = f"operator:bob@{project}"
            document["body"]["approvers"][1]["chat_subjects"] = []
        (folder / name).write_text(yaml.safe_dump(document))
    document = {"project": project, "contract": "binding", "body": binding}
    (folder / "channel-binding.yaml").write_text(yaml.safe_dump(document))
    return folder


def _telegram(bot: str) -> dict[str, Any]:
    return {
        "family": "channel_binding",
        "schema_version": 1,
        "agent_id": "ops-agent",
        "channel": {
            "kind": "telegram",
            "bot_id": bot,
            "chat_ids": [],
            "bot_token": "env:TELEGRAM_BOT_TOKEN",
            "webhook_secret": "env:TELEGRAM_WEBHOOK_SECRET",
        },
    }


SLACK_BINDING = {
    "family": "channel_binding",
    "schema_version": 1,
    "agent_id": "ops-agent",
    "channel": {
        "kind": "slack",
        "team_id": TEAM,
        "app_id": APP,
        "channel_ids": [],
        "bot_token": "env:SLACK_BOT_TOKEN",
        "signing_secret": "env:SLACK_SIGNING_SECRET",
    },
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    home = tmp_path_factory.mktemp("approvals")
    journal = home / "demo-mcp-journal.jsonl"
    with own_platform(home, AWOOOP_DEMO_MCP_JOURNAL=str(journal), **ENV) as running:
        folders = [
            _tenant(home, "ops", _telegram(OPS_BOT), [f"ops:telegram:{ALICE}"]),
            _tenant(home, "slops", SLACK_BINDING, [f"slops:slack:{SLACK_ALICE}"]),
            _tenant(home, "race", _telegram("7201"), []),
        ]
        running.cli("contracts", "onboard", *(str(folder) for folder in folders))
        yield running


def _journal(platform: RunningPlatform) -> Path:
    return platform.home / "demo-mcp-journal.jsonl"


def _restarts(platform: RunningPlatform) -> int:
    """Restarts the demo MCP servers served, by their own journal."""
    return len(calls(read_journal(_journal(platform)), "restart_service"))


async def _produce(platform: RunningPlatform, record: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=platform.env["AWOOOP_KAFKA_BOOTSTRAP"], acks="all"
    )
    await producer.start()
    try:
        key, value = record
        await producer.send_and_wait(Topics.CHANNEL_INBOUND.name, value, key=key)
    finally:
        await producer.stop()


async def _chat_call(
    platform: RunningPlatform, chat: str, method: str, *, buttons: bool, text: str = ""
) -> dict[str, Any]:
    """The first accepted call of `method` to `chat` (with buttons or not, carrying
    `text`), once there is one."""
    url = platform.platform.fake_chat_url
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [
            c
            for c in dev_chat.received(url, chat=chat, method=method)
            if c["ok"] and bool(c.get("buttons")) == buttons and text in (c.get("text") or "")
        ]
        return bool(found)

    await wait_for(seen, within=60, message=f"{method} to {chat}")
    return found[0]


def _press(request: dict[str, Any], user: str) -> tuple[bytes, bytes]:
    """`user` pressing Approve on the request message in the on-call group."""
    return telegram_callback_record(
        project="ops",
        bot=OPS_BOT,
        update_id=next(_UPDATES),
        user=user,
        chat=OPS_CHAT,
        message_id=int(request["message_id"]),
        data=_button(request, "Approve"),
    )


def _button(call: dict[str, Any], label: str) -> str:
    return str(next(b["data"] for row in call["buttons"] for b in row if b["text"] == label))


async def _run_state(platform: RunningPlatform, project: str, state: str) -> dict[str, Any]:
    with platform.api(project) as client:
        found: list[dict[str, Any]] = []

        def reached() -> bool:
            found[:] = [r for r in client.get("/v1/runs").json()["runs"] if r["state"] == state]
            return bool(found)

        await wait_for(reached, within=60, message=f"a {state} run of {project}")
        detail: dict[str, Any] = client.get(f"/v1/runs/{found[0]['run_id']}").json()
    return detail


async def test_a_telegram_button_press_grants_the_restart_which_runs_once(
    platform: RunningPlatform,
) -> None:
    before = _restarts(platform)
    asked = telegram_record(
        project="ops",
        bot=OPS_BOT,
        update_id=next(_UPDATES),
        user=ASKER,
        text="please restart checkout",
        chat=OPS_CHAT,
    )
    await _produce(platform, asked)
    request = await _chat_call(platform, OPS_CHAT, "sendMessage", buttons=True)
    assert "restart_service__demo" in request["text"]
    assert f"ops:telegram:{ASKER}" in request["text"]
    # The person who asked presses Approve first: refused (and recorded), nothing runs.
    await _produce(platform, _press(request, ASKER))
    with platform.api("ops") as client:
        refused: list[dict[str, Any]] = []

        def requester_refused() -> bool:
            listed = client.get("/v1/approvals", params={"state": "pending"}).json()["items"]
            refused[:] = [v for a in listed for v in a["votes"] if not v["counted"]]
            return bool(refused)

        await wait_for(requester_refused, message="the requester's press refused")
    assert [(v["code"], v["subject"]) for v in refused] == [
        ("E-APPROVAL-REQUESTER", f"ops:telegram:{ASKER}")
    ]
    assert _restarts(platform) == before
    await _produce(platform, _press(request, ALICE))
    detail = await _run_state(platform, "ops", "completed")
    assert detail["run"]["reply"] == "Restart requested. Outcome: service: checkout, restarts: 1"
    kinds = [e["event_type"] for e in detail["timeline"]]
    assert kinds.count("approval.vote_refused") == 1
    assert kinds.count("approval.granted") == kinds.count("run.tool_call_approved") == 1
    (approval,) = detail["approvals"]
    assert approval["state"] == "granted"
    assert [v["approver_id"] for v in approval["votes"] if v["counted"]] == ["alice"]
    edited = await _chat_call(
        platform, OPS_CHAT, "editMessageText", buttons=False, text="Approved by alice"
    )
    assert str(edited["message_id"]) == str(request["message_id"])
    assert _restarts(platform) == before + 1


def _slack_signed(body: bytes, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(SLACK_SECRET, stamp, body),
    }


async def test_a_slack_button_press_grants_the_restart_which_runs_once(
    platform: RunningPlatform,
) -> None:
    before = _restarts(platform)
    event = {
        "type": "event_callback",
        "team_id": TEAM,
        "api_app_id": APP,
        "event_id": "Ev0APPROVE1",
        "event_time": int(time.time()),
        "authorizations": [{"user_id": "U0BOT", "is_bot": True}],
        "event": {
            "type": "message",
            "channel": CHANNEL,
            "channel_type": "channel",
            "user": SLACK_ASKER,
            "text": "please restart checkout",
            "ts": "1765000100.000100",
        },
    }
    config = BridgeConfig(project_id="slops", slack_signing_secret=SLACK_SECRET)
    async with kafka_publish(Settings.from_env(platform.env).kafka) as publish:
        transport = httpx.ASGITransport(app=create_bridge_app(config, publish))
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as bridge:
            body = json.dumps(event).encode()
            sent = await bridge.post(
                "/slack/events", content=body, headers=_slack_signed(body, "application/json")
            )
            assert sent.status_code == 200, sent.text
            request = await _chat_call(platform, CHANNEL, "chat.postMessage", buttons=True)
            interaction = {
                "type": "block_actions",
                "team": {"id": TEAM, "domain": "ops"},
                "user": {"id": SLACK_ALICE, "team_id": TEAM},
                "api_app_id": APP,
                "channel": {"id": CHANNEL},
                "container": {"channel_id": CHANNEL, "message_ts": request["message_id"]},
                "actions": [
                    {
                        "action_id": "approve",
                        "block_id": "approval",
                        "value": _button(request, "Approve"),
                        "action_ts": "1765000101.000200",
                    }
                ],
            }
            form = urlencode({"payload": json.dumps(interaction)}).encode()
            pressed = await bridge.post(
                "/slack/interactivity",
                content=form,
                headers=_slack_signed(form, "application/x-www-form-urlencoded"),
            )
            assert pressed.status_code == 200, pressed.text
    detail = await _run_state(platform, "slops", "completed")
    assert detail["run"]["reply"].startswith("Restart requested. Outcome: service: checkout")
    (approval,) = detail["approvals"]
    assert approval["state"] == "granted"
    edited = await _chat_call(
        platform, CHANNEL, "chat.update", buttons=False, text="Approved by alice"
    )
    assert str(edited["message_id"]) == str(request["message_id"])
    assert _restarts(platform) == before + 1


async def test_two_approval_processes_racing_grant_once_and_the_call_runs_once(
    platform: RunningPlatform,
) -> None:
    """Alice votes through the platform's approval process and bob through a second one
    (its own pool and API, the same database) at the same moment; one approval is enough."""
    asked = telegram_record(
        project="race", bot="7201", update_id=next(_UPDATES), user=ASKER, text="restart"
    )
    before = _restarts(platform)
    await _produce(platform, asked)
    await _chat_call(platform, ASKER, "sendMessage", buttons=True)
    with platform.api("race") as client:
        pending: list[dict[str, Any]] = []

        def listed() -> bool:
            answer = client.get("/v1/approvals", params={"state": "pending"}).json()
            pending[:] = answer["items"]
            return bool(pending)

        await wait_for(listed, message="the pending approval of race")
    approval_id = pending[0]["approval_id"]
    home = platform.home
    settings = Settings.from_env(
        platform.env
        | {
            "AWOOOP_APPROVAL_TOKEN_SIGNING_KEY": (home / APPROVAL_TOKEN_SIGNING_KEY_FILE)
            .read_text()
            .strip()
        }
    )
    secret = (home / "api-jwt.secret").read_text().strip()
    pool = await create_pool(settings.service_database_url("approval"), "approval")
    second = create_api(
        lambda: pool,
        jwt_secret=secret,
        signing_key=SigningKey.from_spec(generate_ed25519_keys("unused").signing_spec),
        mint=token_minter(settings),
    )

    def vote(subject: str) -> dict[str, str]:
        token = mint_api_token(secret, subject=subject, projects=["race"], roles=["approver"])
        return {"Authorization": f"Bearer {token}"}

    path = f"/v1/approvals/{approval_id}/decisions"
    try:
        async with (
            httpx.AsyncClient(base_url=platform.platform.approval_url) as first,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=second), base_url="http://second"
            ) as other,
        ):
            answers = await asyncio.gather(
                first.post(path, json={"decision": "approve"}, headers=vote("operator:alice@race")),
                other.post(path, json={"decision": "approve"}, headers=vote("operator:bob@race")),
            )
    finally:
        await pool.close()
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    detail = await _run_state(platform, "race", "completed")
    kinds = [e["event_type"] for e in detail["timeline"]]
    assert kinds.count("approval.granted") == 1
    assert kinds.count("gateway.tool_call_succeeded") == 1
    await asyncio.sleep(1.0)  # a second execution, had there been one, would be journaled
    assert _restarts(platform) == before + 1

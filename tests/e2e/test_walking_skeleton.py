"""The walking skeleton end to end: real processes for the broker, Postgres, Redis, the
five services, the MCP server and the query API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from awooop.contracts.registries.topics import Topics
from awooop.infra.embedded.processes import pid_alive
from support.platform_procs import own_platform
from support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e

URL_VARS = ("AWOOOP_KAFKA_BOOTSTRAP", "AWOOOP_DATABASE_URL", "AWOOOP_REDIS_URL")


def test_make_run_shows_runs_with_their_tool_calls_and_replies_in_the_chat(
    tmp_path: Path,
) -> None:
    """What `make run` runs: the demo tenants onboarded through the approval API, the demo
    conversation (three messages to the demo bot, one to acme's), every run's timeline and,
    for the `active` demo tenant, the reply its fake Telegram chat received; a restart
    approved by button in the `ops` tenant; then serving. acme stays in `shadow`: its
    reply is suppressed and no chat sees it."""
    home = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    env["AWOOOP_HOME"] = str(home)
    demo = subprocess.Popen(
        [sys.executable, "-m", "awooop.cli.main", "run-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        shown = []
        for line in demo.stdout:
            shown.append(line)
            if "Ctrl-C stops it" in line or "did not start" in line:
                break
        text = "".join(shown)
        runs = re.findall(r"^run \S+  (\w+)  agent demo-agent  mode active$", text, re.M)
        assert runs == ["completed"] * 3, text
        chat = re.findall(
            r"^  the fake Telegram chat 1001 received \(sendMessage\): (.+)$", text, re.M
        )
        assert len(chat) == 3, text
        conversation = text[: text.index("[approval]")]
        replies = re.findall(r"^  reply: (.+)$", conversation, re.M)
        assert chat == replies, text
        # The second tenant side by side: its own bot, agent and two of its four tools.
        acme = re.findall(r"^run \S+  (\w+)  agent acme-diagnostics  mode shadow$", text, re.M)
        assert acme == ["completed"], text
        assert text.count("run.tool_call_requested") == 3 + 2 + 1
        assert text.count("gateway.tool_call_succeeded") == 3 + 2 + 1
        assert text.count("reply (suppressed: shadow mode)") == 1
        # Every inbound record of the demo is listed with its outcome: each started a run.
        shown = re.findall(r"^  \S+  run_started\s+telegram\s+(7000|7100):", text, re.M)
        assert sorted(shown) == ["7000", "7000", "7000", "7100"], text
        assert "status: healthy" in text
        assert "billing's recent errors: " in text
        # Each run names the agent revision it ran: revision 1, activated by onboarding.
        assert len(re.findall(r"^  agent revision demo-agent@1:[0-9a-f]{12}$", text, re.M)) == 3
        assert (
            len(re.findall(r"^  agent revision acme-diagnostics@1:[0-9a-f]{12}$", text, re.M)) == 1
        )
        # Last, a restart in suggest mode waits for a person: alice's button press in the
        # on-call group approves it, it runs once (the MCP server counts the restart) and
        # the run completes; its timeline shows the request, the vote, the token, the run.
        ops = re.findall(r"^run \S+  (\w+)  agent ops-agent  mode suggest$", text, re.M)
        assert ops == ["completed"], text
        assert re.search(
            r"^  the on-call group received the approval request: "
            r".*restart_service__demo.* \[Approve\] \[Reject\]$",
            text,
            re.M,
        ), text
        approval = text[text.index("agent ops-agent") :]
        steps = [
            "gateway.approval_required",
            "approval.requested",
            "approval.vote_recorded       alice approved via button",
            "approval.granted",
            "run.tool_call_approved",
            "gateway.tool_call_succeeded  tool restart_service__demo",
            "run.completed",
        ]
        at = [approval.index(step) for step in steps]
        assert at == sorted(at), approval
        assert "reply: 'Restart requested. Outcome: service: checkout, restarts: 1'" in approval
        assert "Approved by alice: running it now." in approval
        pieces = json.loads((home / "stack.json").read_text())["pieces"].values()
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, rest
        assert "services and API stopped" in rest
        assert len(pieces) == 3
        assert not any(pid_alive(piece["pid"], piece["binary"]) for piece in pieces)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


async def _events_on(bootstrap: str, topic: str, run_id: str, want: int) -> list[object]:
    async with TopicReader(bootstrap, topic) as reader:
        seen = await reader.until(
            lambda s: len([e for e in s if e.correlation_id == run_id]) >= want, within=30
        )
    return [e for e in seen if e.correlation_id == run_id]


def test_one_update_twice_is_one_run_and_a_relay_crash_applies_once(tmp_path: Path) -> None:
    with own_platform(
        tmp_path / "p", tenants=("demo",), AWOOOP_RUNTIME_LEASE_SECONDS="2"
    ) as running:
        for _ in range(2):
            running.cli("send", "telegram", "--text", "hi", "--update-id", "7")
        (run,) = running.wait_for_runs("demo", 1)
        with running.api("demo") as api:
            detail = api.get(f"/v1/runs/{run['run_id']}").json()
            # The duplicate never becomes a second run, however long we wait.
            assert len(api.get("/v1/runs").json()["runs"]) == 1
        # The demo tenant is active: its reply's outbound message (and, once delivered, its
        # report) join the timeline; the run's own steps are these.
        timeline = [
            e["event_type"]
            for e in detail["timeline"]
            if not e["event_type"].startswith("channel.")
        ]
        assert timeline == [
            "ingress.message_received",
            "run.started",
            "run.tool_call_requested",
            "gateway.tool_call_succeeded",
            "run.tool_result_accepted",
            "run.completed",
        ]
        assert detail["run"]["suppressed"] is False
        assert detail["run"]["trigger_text"] == "hi"

        # The runtime dies right after the broker acknowledged its first relay batch
        # and before the outbox commit: the batch is published again on restart.
        assert running.signal("runtime", signal.SIGTERM) == 0
        running.forget("runtime")
        running.start("runtime-crashing", service="runtime", AWOOOP_FAULT_RELAY_EXIT_AFTER_ACK="1")
        running.cli("send", "telegram", "--text", "again", "--update-id", "8")
        assert running.platform.processes["runtime-crashing"].wait(60) == 86
        running.forget("runtime-crashing")
        running.start("runtime")
        running.wait_ready()
        finished = running.wait_for_runs("demo", 2)
        second = next(r for r in finished if r["run_id"] != run["run_id"])
        with running.api("demo") as api:
            detail = api.get(f"/v1/runs/{second['run_id']}").json()
        steps = [e for e in detail["timeline"] if not e["event_type"].startswith("channel.")]
        types = [e["event_type"] for e in steps]
        assert types.count("run.started") == 1
        assert types.count("run.completed") == 1
        assert len({e["event_id"] for e in steps}) == len(types) == 6

        # The republished run.started really is on the topic twice: the projector and
        # the gateway absorbed the duplicate.
        events = asyncio.run(
            _events_on(
                running.env["AWOOOP_KAFKA_BOOTSTRAP"],
                Topics.RUN_EVENTS.name,
                second["run_id"],
                want=5,
            )
        )
        started = [e for e in events if e.event_type == "run.started"]  # type: ignore[attr-defined]
        assert len(started) == 2
        assert len({e.event_id for e in started}) == 1  # type: ignore[attr-defined]

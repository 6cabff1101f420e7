"""A runtime process killed (SIGKILL) while its step waits for the LLM: the other runtime
process takes the step over once the lease runs out, calls the model again, and the
step's budget reservation is the one the dead process made, settled once.

The fake OpenAI-compatible server runs in the test and holds every request, so the
dead process's call is still open when it dies; the survivor's call comes only after
the lease ran out, and the run completes once.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from awooop.security.tenant_credentials import env_variable_name
from support.fake_llm import FakeLLM
from support.fault_helpers import admin_connection, own_api_port, pid_of, poll
from support.infra import unique
from support.platform_procs import DEMO_TENANTS, RunningPlatform, own_platform

pytestmark = pytest.mark.fault

RUNTIMES = ("runtime", "runtime-2")


def _tenant(home: Path, project: str, base_url: str) -> Path:
    folder = home / "tenants" / project
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("agent.yaml", "tool-status.yaml", "channel-binding-telegram-7000.yaml"):
        document = yaml.safe_load((DEMO_TENANTS / "demo" / name).read_text())
        document["project"] = project
        if document["body"]["family"] == "agent":
            document["body"]["provider"] = {
                "kind": "openai_compatible",
                "model": "fake-model",
                "base_url": base_url,
                "api_key": "env:LLM_KEY",
            }
        (folder / name).write_text(yaml.safe_dump(document))
    budget = yaml.safe_load((DEMO_TENANTS / "demo" / "budget.yaml").read_text())
    budget["project"] = project
    budget["body"]["prices"].append(
        {"model": "fake-model", "input_per_million": "1", "output_per_million": "2"}
    )
    (folder / "budget.yaml").write_text(yaml.safe_dump(budget))
    return folder


def test_a_runtime_killed_mid_llm_call_leaves_the_step_to_the_other_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique("rkl")
    own_api_port(monkeypatch)
    key = {env_variable_name(project, "LLM_KEY"): "sk-fault-test"}
    with (
        FakeLLM(default_reply="all healthy") as llm,
        own_platform(
            tmp_path / "p",
            AWOOOP_RUNTIME_LEASE_SECONDS="3",
            AWOOOP_KAFKA_SESSION_TIMEOUT_MS="2000",
            AWOOOP_KAFKA_HEARTBEAT_MS="300",
            **key,
        ) as running,
    ):
        running.cli("contracts", "onboard", str(_tenant(tmp_path, project, llm.base_url)))
        running.start("runtime-2", service="runtime")
        running.wait_ready()
        asyncio.run(_scenario(running, project, llm))


async def _scenario(running: RunningPlatform, project: str, llm: FakeLLM) -> None:
    conn = await admin_connection(running)
    try:
        llm.stall()
        running.cli("send", "telegram", "--project", project, "--user", "77", "--text", "hi?")
        assert await asyncio.to_thread(llm.waiting.wait, 30), "no runtime called the model"
        row = await conn.fetchrow(
            "SELECT run_id, lease_owner FROM runtime.runs WHERE project_id = $1", project
        )
        names = {pid_of(running, name): name for name in RUNTIMES}
        victim = names[int(row["lease_owner"].split("-")[1])]
        assert running.signal(victim, signal.SIGKILL) == -signal.SIGKILL
        running.forget(victim)
        assert len(llm.requests) == 1  # the dead process's call, still held

        async def second_call() -> bool | None:
            return True if len(llm.requests) >= 2 else None

        await poll(second_call, within=30, message=lambda: "the survivor never took the step")
        taken = await conn.fetchrow(
            "SELECT attempt, lease_owner FROM runtime.runs WHERE run_id = $1", row["run_id"]
        )
        # Taken over by the survivor as a further attempt of the same step.
        survivor = next(name for name in RUNTIMES if name != victim)
        assert int(taken["lease_owner"].split("-")[1]) == pid_of(running, survivor)
        assert taken["attempt"] >= 2
        llm.release()

        async def ended() -> Any:
            return await conn.fetchrow(
                "SELECT state, attempt, lease_owner FROM runtime.runs WHERE run_id = $1 "
                "AND state = 'completed'",
                row["run_id"],
            )

        await poll(ended, within=30, message=lambda: "the run never completed")
        assert len(llm.requests) == 2  # one call by each process, never two at once

        reservations = await conn.fetch(
            "SELECT step, state, tokens, settled_tokens FROM runtime.budget_reservations "
            "WHERE run_id = $1",
            row["run_id"],
        )
        assert [(r["step"], r["state"]) for r in reservations] == [(0, "settled")]
        ledger = await conn.fetch(
            "SELECT scope, reserved_tokens, settled_tokens FROM runtime.budget_ledger "
            "WHERE project_id = $1 AND scope = 'tenant'",
            project,
        )
        assert ledger, "the step reserved nothing"
        for scope in ledger:  # debited once, by the one reservation both processes used
            assert scope["reserved_tokens"] == 0
            assert scope["settled_tokens"] == reservations[0]["settled_tokens"]
        completed = await conn.fetchval(
            "SELECT count(*) FROM runtime.events WHERE stream_id = $1 "
            "AND convert_from(data, 'UTF8')::jsonb ->> 'event_type' = 'run.completed'",
            str(row["run_id"]),
        )
        assert completed == 1
    finally:
        await conn.close()

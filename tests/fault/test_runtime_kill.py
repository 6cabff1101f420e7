"""A runtime process killed (SIGKILL) while runs are leased to it: the other runtime
process takes the runs over once their leases run out and finishes them, each run once.

Two runtime processes share the `runs` table (the scheduler). Each step takes 1.5 s
(the scripted provider's delay) and a lease lasts 3 s, so at any moment most runs
are leased. The victim is frozen (SIGSTOP) while its leases are read, then killed
while still frozen: the runs seen leased to it are exactly the ones it held.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.topics import Topics
from support.fault_helpers import (
    admin_connection,
    frozen_then_killed,
    own_api_port,
    pid_of,
    poll,
)
from support.infra import unique
from support.platform_procs import RunningPlatform, own_platform
from support.topic_reader import TopicReader

pytestmark = pytest.mark.fault

MESSAGES = 8
RUNTIMES = ("runtime", "runtime-2")
OWNER = re.compile(r"^runtime-(\d+)-[0-9a-f]+$")
RUN_STREAM_TYPES = [
    "run.started",
    "run.tool_call_requested",
    "run.tool_result_accepted",
    "run.completed",
]
TIMELINE_TYPES = {
    "ingress.message_received": 1,
    "run.started": 1,
    "run.tool_call_requested": 1,
    "gateway.tool_call_succeeded": 1,
    "run.tool_result_accepted": 1,
    "run.completed": 1,
}
TERMINAL_STATES = ["completed", "failed", "cancelled", "timeout"]
ACTIVE = "state <> ALL($2::text[])"


def test_killed_runtime_leaves_its_leased_runs_to_the_other_runtime_each_finished_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique("rk")
    own_api_port(monkeypatch)
    with own_platform(
        tmp_path / "p",
        AWOOOP_RUNTIME_LEASE_SECONDS="3",
        AWOOOP_SCRIPTED_STEP_DELAY_MS="1500",
        AWOOOP_KAFKA_SESSION_TIMEOUT_MS="2000",
        AWOOOP_KAFKA_HEARTBEAT_MS="300",
    ) as running:
        running.onboard_like_demo(project, "7000")  # before runtime-2 starts: it reads them
        running.start("runtime-2", service="runtime")
        running.wait_ready()
        asyncio.run(_scenario(running, project))


async def _scenario(running: RunningPlatform, project: str) -> None:
    conn = await admin_connection(running)
    try:
        await asyncio.gather(
            *(asyncio.to_thread(_send, running, project, i) for i in range(MESSAGES))
        )
        victim, held = await _kill_a_runtime_holding_leases(running, conn, project)
        survivor = next(name for name in RUNTIMES if name != victim.name)
        survivor_pid = pid_of(running, survivor)

        # Watch the held runs change hands while everything finishes.
        owners: dict[uuid.UUID, set[tuple[str, int]]] = collections.defaultdict(set)
        watching = asyncio.create_task(_watch_owners(conn, list(held), owners))
        try:
            done = await asyncio.to_thread(running.wait_for_runs, project, MESSAGES, within=90)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        run_ids = {uuid.UUID(r["run_id"]) for r in done}
        assert len(run_ids) == MESSAGES
        assert set(held) <= run_ids

        rows = await conn.fetch(
            "SELECT run_id, state, lease_owner, version FROM runtime.runs WHERE project_id = $1",
            project,
        )
        assert {r["run_id"]: (r["state"], r["lease_owner"], r["version"]) for r in rows} == {
            run_id: ("completed", None, len(RUN_STREAM_TYPES)) for run_id in run_ids
        }
        for run_id, state in held.items():
            # The dead owner's lease stays on the row until it runs out; then the
            # survivor's claim loop (the reaper) takes the run as a further attempt,
            # and nobody else ever holds it.
            holders = {(_pid_in(owner), attempt) for owner, attempt in owners[run_id]}
            assert any(pid == survivor_pid and attempt > 1 for pid, attempt in holders), (
                f"run {run_id} ({state} when {victim.name} died) was never reclaimed by "
                f"{survivor} (pid {survivor_pid}): {owners[run_id]}"
            )
            anyone_else = {pid for pid, _ in holders} - {survivor_pid, _pid_in(victim.owner)}
            assert not anyone_else, owners[run_id]

        events = await _run_events(running, run_ids)
        for run_id in run_ids:
            _assert_one_history(run_id, events[run_id])
        with running.api(project) as api:
            for run_id in run_ids:
                detail = api.get(f"/v1/runs/{run_id}").json()
                assert detail["run"]["state"] == "completed"
                timeline = detail["timeline"]
                assert collections.Counter(e["event_type"] for e in timeline) == TIMELINE_TYPES
                assert len({e["event_id"] for e in timeline}) == len(timeline)
    finally:
        await conn.close()


def _send(running: RunningPlatform, project: str, i: int) -> None:
    """One Telegram message of a person of its own, through the real CLI."""
    user, update = str(1000 + i), str(i)
    args = ("--project", project, "--user", user, "--update-id", update)
    running.cli("send", "telegram", "--text", f"status please {i}", *args)


@dataclass(frozen=True)
class _Victim:
    name: str
    owner: str


async def _kill_a_runtime_holding_leases(
    running: RunningPlatform, conn: asyncpg.Connection, project: str
) -> tuple[_Victim, dict[uuid.UUID, str]]:
    """Wait for every run to start, then SIGKILL the runtime holding the most leases of
    unfinished runs; returns it and those runs (with their state at the kill)."""
    names = {pid_of(running, name): name for name in RUNTIMES}

    async def leases() -> list[asyncpg.Record]:
        return list(
            await conn.fetch(
                "SELECT run_id, state, lease_owner FROM runtime.runs "
                f"WHERE project_id = $1 AND {ACTIVE} AND lease_owner IS NOT NULL "
                "AND lease_until > now()",
                project,
                TERMINAL_STATES,
            )
        )

    async def all_started() -> bool | None:
        count = await conn.fetchval(
            "SELECT count(*) FROM runtime.runs WHERE project_id = $1", project
        )
        return True if count == MESSAGES else None

    await poll(all_started, within=30, message=lambda: f"{MESSAGES} runs never all started")
    for _attempt in range(50):
        live = collections.Counter(
            _Victim(names[pid], row["lease_owner"])
            for row in await leases()
            if (pid := _pid_in(row["lease_owner"])) in names
        )
        if live:
            victim, _count = live.most_common(1)[0]

            async def held_by(owner: str = victim.owner) -> dict[uuid.UUID, str] | None:
                held = {
                    r["run_id"]: r["state"] for r in await leases() if r["lease_owner"] == owner
                }
                return held or None

            held = await frozen_then_killed(running, victim.name, held_by)
            if held is not None:
                return victim, held
        await asyncio.sleep(0.1)
    raise AssertionError(f"no runtime process ever held a lease of {project}")


def _pid_in(owner: str) -> int | None:
    match = OWNER.match(owner)
    return int(match.group(1)) if match else None


async def _watch_owners(
    conn: asyncpg.Connection,
    run_ids: list[uuid.UUID],
    owners: dict[uuid.UUID, set[tuple[str, int]]],
) -> None:
    # A step holds its lease for 1.5 s: a 50 ms sample cannot miss a holder.
    while True:
        for row in await conn.fetch(
            "SELECT run_id, lease_owner, attempt FROM runtime.runs "
            "WHERE run_id = ANY($1::uuid[]) AND lease_owner IS NOT NULL",
            run_ids,
        ):
            owners[row["run_id"]].add((row["lease_owner"], row["attempt"]))
        await asyncio.sleep(0.05)


async def _run_events(
    running: RunningPlatform, run_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[Envelope[Any]]]:
    wanted = {str(r) for r in run_ids}

    def every_run_completed(seen: list[Envelope[Any]]) -> bool:
        completed = {e.correlation_id for e in seen if e.event_type == "run.completed"}
        return wanted <= completed

    bootstrap = running.env["AWOOOP_KAFKA_BOOTSTRAP"]
    async with TopicReader(bootstrap, Topics.RUN_EVENTS.name) as reader:
        seen = await reader.until(every_run_completed, within=30)
    events: dict[uuid.UUID, list[Envelope[Any]]] = collections.defaultdict(list)
    for envelope in seen:
        if envelope.correlation_id in wanted:
            events[uuid.UUID(envelope.correlation_id)].append(envelope)
    return events


def _assert_one_history(run_id: uuid.UUID, events: list[Envelope[Any]]) -> None:
    """The relay may publish a record twice; distinct event ids must tell one history."""
    distinct = {e.event_id: e for e in events}
    ids_by_type: dict[str, set[uuid.UUID]] = collections.defaultdict(set)
    for event in distinct.values():
        ids_by_type[event.event_type].add(event.event_id)
    assert {t: len(ids) for t, ids in ids_by_type.items()} == dict.fromkeys(RUN_STREAM_TYPES, 1), (
        f"run {run_id}: {ids_by_type}"
    )
    ordered = sorted(distinct.values(), key=lambda e: e.stream_seq)
    assert [e.stream_seq for e in ordered] == list(range(1, len(RUN_STREAM_TYPES) + 1))
    assert [e.event_type for e in ordered] == RUN_STREAM_TYPES
    assert {(e.stream_type, e.stream_id) for e in ordered} == {("run", str(run_id))}

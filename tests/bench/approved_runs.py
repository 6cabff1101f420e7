"""Approved runs: writes in `suggest` mode that wait for a person, decided by an automatic
approver, timed from the message's produce to `completed` in the read model.

A tenant of its own (`bench-ops`: the `ops` tenant's agent, restart tool and policy, one
approval needed) receives `APPROVED_RUNS` messages, at most `APPROVED_CONCURRENCY` runs
in flight. Each run asks for a restart; gate 5 holds it; the approval service makes the
request; the runtime posts it to the chat (the fake Telegram API). The automatic
approver polls the `approvals` read model for pending requests of the tenant every
`POLL` seconds (the admin connection) and approves each once over HTTP as alice (`POST
/v1/approvals/{id}/decisions` on the approval process, alice's API subject), as an
operator's script would. The grant's token reaches the gateway through the runtime;
the restart runs; the run completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml
from skeleton_load import LoadResult, SkeletonLoad

from awooop.infra.settings import KafkaSettings
from awooop.security.api_tokens import mint_api_token
from support.platform_procs import DEMO_TENANTS, RunningPlatform

PROJECT = "bench-ops"
BOT = "7400"
APPROVER = "operator:alice"
APPROVED_RUNS = int(os.environ.get("AWOOOP_BENCH_APPROVED_RUNS", "200"))
APPROVED_CONCURRENCY = int(os.environ.get("AWOOOP_BENCH_APPROVED_CONCURRENCY", "32"))
POLL = 0.02
BOT_TOKEN_ENV = {"AWOOOP_TENANT_BENCH_OPS_TELEGRAM_BOT_TOKEN": f"{BOT}:token-of-bench-ops"}
"""The tenant's bot token, so the fake chat takes its approval requests and replies."""

SAID = """
SELECT (SELECT count(*) FROM projector.outbound_messages WHERE project_id = $1) AS said,
       (SELECT count(*) FROM projector.timeline
        WHERE project_id = $1 AND event_type = 'channel.delivery_reported') AS reported
"""

PENDING = """
SELECT approval_id FROM projector.approvals
WHERE project_id = $1 AND state = 'pending' AND NOT (approval_id = ANY($2::uuid[]))
"""


def onboard_approved_tenant(running: RunningPlatform) -> None:
    """`bench-ops`: the ops tenant's contracts under the bench's project and bot."""
    folder = running.home / "tenants" / PROJECT
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("agent.yaml", "tool-restart-service.yaml", "policy.yaml"):
        document = yaml.safe_load((DEMO_TENANTS / "ops" / name).read_text())
        document["project"] = PROJECT
        if name == "policy.yaml":
            for approver in document["body"]["approvers"]:
                approver["chat_subjects"] = []
        (folder / name).write_text(yaml.safe_dump(document))
    binding = yaml.safe_load(
        (DEMO_TENANTS / "ops" / "channel-binding-telegram-7200.yaml").read_text()
    )
    binding["project"] = PROJECT
    binding["body"]["channel"]["bot_id"] = BOT
    (folder / "channel-binding.yaml").write_text(yaml.safe_dump(binding))
    running.cli("contracts", "onboard", str(folder))


@dataclass(frozen=True, slots=True)
class ApprovedFigures:
    load: LoadResult
    votes: int
    """Votes the automatic approver cast (one per request)."""
    refused: int
    """Votes the approval service did not count (expected: none)."""

    @property
    def latencies(self) -> list[float]:
        return [r.produce_to_timeline for r in self.load.runs if r.state == "completed"]

    @property
    def runs_per_s(self) -> float:
        return len(self.latencies) / self.load.elapsed


class AutoApprover:
    """Approves every pending request of `PROJECT` once, as alice, over HTTP."""

    def __init__(self, database_url: str, approval_url: str, jwt_secret: str) -> None:
        self._database_url = database_url
        self._approval_url = approval_url
        token = mint_api_token(jwt_secret, subject=APPROVER, projects=[PROJECT], roles=[])
        self._headers = {"Authorization": f"Bearer {token}"}
        self.voted: set[Any] = set()
        self.refused = 0

    async def run(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            async with httpx.AsyncClient(base_url=self._approval_url, timeout=10) as http:
                while True:
                    pending = await conn.fetch(PENDING, PROJECT, list(self.voted))
                    for row in pending:
                        self.voted.add(row["approval_id"])
                    answers = await asyncio.gather(
                        *(self._approve(http, row["approval_id"]) for row in pending)
                    )
                    self.refused += sum(1 for status in answers if status != 200)
                    await asyncio.sleep(POLL)
        finally:
            await conn.close()

    async def _approve(self, http: httpx.AsyncClient, approval_id: Any) -> int:
        answer = await http.post(
            f"/v1/approvals/{approval_id}/decisions",
            json={"decision": "approve"},
            headers=self._headers,
        )
        return answer.status_code


async def measure_approved_runs(
    running: RunningPlatform, kafka: KafkaSettings, database_url: str
) -> ApprovedFigures:
    """`APPROVED_RUNS` restarts, each approved by the automatic approver."""
    secret = (Path(running.home) / "api-jwt.secret").read_text().strip()
    approver = AutoApprover(database_url, running.platform.approval_url, secret)
    voting = asyncio.create_task(approver.run())
    load = SkeletonLoad(
        kafka,
        database_url,
        project=PROJECT,
        bot=BOT,
        label="approved",
        first=20_000_000,
        runs=APPROVED_RUNS,
        concurrency=APPROVED_CONCURRENCY,
    )
    try:
        result = await load.drive(running.platform.check_alive)
    finally:
        voting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await voting
    await _all_delivered(database_url)
    return ApprovedFigures(result, len(approver.voted), approver.refused)


async def _all_delivered(database_url: str, within: float = 60.0) -> None:
    """Wait until every message the approved runs said (requests, their edits, replies)
    has its delivery report in the read model, twice in a row: a run completes before
    its last messages are delivered, and the rebuild after this must find the live read
    models at rest to compare them."""
    conn = await asyncpg.connect(database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        last = None
        while True:
            row = await conn.fetchrow(SAID, PROJECT)
            now = (row["said"], row["reported"])
            if now == last and now[0] == now[1]:
                return
            if loop.time() > deadline:
                raise AssertionError(f"approved runs' messages said / reported: {now}")
            last = now
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def approved_table(a: ApprovedFigures, percentile: Any) -> list[str]:
    done = a.latencies
    spread = " / ".join(f"{percentile(done, p) * 1000:,.0f}" for p in (50, 95, 99))
    return [
        "| figure | value |",
        "|---|---|",
        f"| approved runs completed | {len(done):,} of {len(a.load.runs):,} |",
        f"| votes cast by the automatic approver (not counted) | {a.votes:,} ({a.refused}) |",
        f"| **approved runs/s** ({APPROVED_CONCURRENCY} in flight) | **{a.runs_per_s:,.1f}** |",
        f"| produce → `completed` p50 / p95 / p99 | {spread} ms |",
        f"| mean produce → `completed` | {statistics.fmean(done) * 1000:,.0f} ms |",
    ]

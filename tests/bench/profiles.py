"""Where the CPU of the measured span goes: a py-spy flame graph per Python process and
Postgres's statements per run from `pg_stat_statements`.

Only with `AWOOOP_BENCH_PROFILE=<folder>` (e.g. `docs/performance`): sampling costs
the sampled processes a little, so the figures of a profiled run are not compared
with others. py-spy attaches to each running process (`--nonblocking`: it never
stops the process to read its stack; the gateway's stdio MCP server is sampled as a
subprocess of the gateway) from the first produce to the last completion, and writes
`<process>.svg` when it is interrupted. The embedded Postgres is started with
`pg_stat_statements` loaded; its counters are reset at the span's start and read at
its end, so every statement in `statements.md` ran for the measured runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

FORMAT = os.environ.get("AWOOOP_BENCH_PROFILE_FORMAT", "flamegraph")
"""py-spy's output: `flamegraph` (`.svg`), or `raw` (collapsed stacks, `.txt`) to read."""
SAMPLES_PER_SECOND = 97
"""Not a multiple of the services' timers, so no periodic task is over- or undersampled."""
STATEMENTS_SHOWN = 30

_STATEMENTS = """
SELECT r.rolname AS role, s.calls, s.total_exec_time, s.rows, s.query
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
WHERE r.rolname LIKE 'awooop%'
ORDER BY s.total_exec_time DESC
"""
_TRANSACTIONS = """
SELECT r.rolname AS role, sum(s.calls) AS calls
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
WHERE upper(rtrim(s.query, '; ')) = 'COMMIT' AND r.rolname LIKE 'awooop%'
GROUP BY r.rolname ORDER BY 2 DESC
"""


@dataclass(frozen=True, slots=True)
class Statement:
    role: str
    calls: int
    total_ms: float
    rows: int
    query: str


class Profiles:
    """Flame graphs of `processes` (name → pid) and the statements of the span."""

    def __init__(self, folder: Path, processes: dict[str, int], database_url: str) -> None:
        self._folder = folder
        self._processes = processes
        self._database_url = database_url
        self._samplers: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        beside = Path(sys.executable).parent / "py-spy"
        spy = str(beside) if beside.exists() else shutil.which("py-spy")
        if spy is None:
            raise RuntimeError("AWOOOP_BENCH_PROFILE needs py-spy (pip install py-spy)")
        self._folder.mkdir(parents=True, exist_ok=True)
        conn = await asyncpg.connect(self._database_url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
        finally:
            await conn.close()
        for name, pid in self._processes.items():
            suffix = "svg" if FORMAT == "flamegraph" else "txt"
            output = self._folder / f"{name.replace(' ', '-')}.{suffix}"
            self._samplers.append(
                await asyncio.create_subprocess_exec(
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(SAMPLES_PER_SECOND),
                    "--nonblocking",
                    "--subprocesses",
                    "--format",
                    FORMAT,
                    "--output",
                    str(output),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )

    async def stop(self, runs: int) -> None:
        for sampler in self._samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in self._samplers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sampler.wait(), 60)
        conn = await asyncpg.connect(self._database_url)
        try:
            statements = [
                Statement(r["role"], r["calls"], r["total_exec_time"], r["rows"], r["query"])
                for r in await conn.fetch(_STATEMENTS)
            ]
            commits = {r["role"]: int(r["calls"]) for r in await conn.fetch(_TRANSACTIONS)}
        finally:
            await conn.close()
        (self._folder / "statements.md").write_text(statements_page(statements, commits, runs))


def statements_by_role(statements: list[Statement]) -> list[tuple[str, int]]:
    """Calls of every statement summed per role, the most first."""
    counts: dict[str, int] = {}
    for s in statements:
        counts[s.role] = counts.get(s.role, 0) + s.calls
    return sorted(counts.items(), key=lambda item: -item[1])


def statements_page(statements: list[Statement], commits: dict[str, int], runs: int) -> str:
    total = sum(s.total_ms for s in statements)
    lines = [
        "# Postgres statements per run",
        "",
        f"`pg_stat_statements` over the measured span of one profiled `make bench` ({runs:,} "
        "runs), the services' roles only; written by `AWOOOP_BENCH_PROFILE`. Execution time "
        "is the server's own (planning, client round trips and commit flushes excluded).",
        "",
        "Commits per run, by role:",
        "",
        "| role | commits per run |",
        "|---|---|",
        *(f"| {role} | {count / runs:.2f} |" for role, count in commits.items()),
        "",
        "Statements per run, by role: each is one round trip or more (a `COPY` takes two), "
        "`BEGIN`, `COMMIT` and savepoints included:",
        "",
        "| role | statements per run |",
        "|---|---|",
        *(f"| {role} | {count / runs:.2f} |" for role, count in statements_by_role(statements)),
        "",
        f"Execution time per run, every statement: {total / runs:.3f} ms. "
        f"The {STATEMENTS_SHOWN} costliest:",
        "",
        "| role | calls per run | ms per run | ms per call | rows per call | statement |",
        "|---|---|---|---|---|---|",
    ]
    for s in statements[:STATEMENTS_SHOWN]:
        text = " ".join(s.query.split())
        text = (text[:160] + " …") if len(text) > 160 else text
        text = text.replace("|", "\\|")
        lines.append(
            f"| {s.role} | {s.calls / runs:.2f} | {s.total_ms / runs:.4f} | "
            f"{s.total_ms / max(1, s.calls):.4f} | {s.rows / max(1, s.calls):.1f} | `{text}` |"
        )
    return "\n".join(lines) + "\n"

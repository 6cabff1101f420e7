"""CPU seconds of every process of a running platform over one measured span.

Each platform process is counted with its live children (the gateway's stdio
MCP server is its child). Postgres is the postmaster's whole tree, split by
backend: client backends by `application_name` (every service pool names
itself `awooop-<service>`) or else by role, the server's own processes by
`backend_type`. What backends that exited during the span used is only
known in total (it lands in the postmaster's `cutime`), so it is shown
together with the postmaster's own time. The bench's own backends (named
`awooop-bench-…`) are taken out of Postgres and reported beside the bench.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from process_cpu import (
    Snapshot,
    command_label,
    machine_busy_seconds,
    pid_delta,
    self_seconds,
    snapshot,
    tree,
    tree_delta,
)

BENCH_CLIENT = "bench client (producer, poller)"
BENCH_BACKENDS = "postgres backends of the bench (poller, meter, event counts)"
OTHERS = "every other process on the machine"
NOT_PLATFORM = (BENCH_CLIENT, BENCH_BACKENDS, OTHERS)
BENCH_APPLICATIONS = "awooop-bench"
"""Prefix of the bench's own `application_name`s: kept out of the platform's Postgres."""
POSTGRES = "postgres"
EXITED = "postmaster + backends that exited"
ITSELF = "the process itself"

_LABELS = """
SELECT pid, coalesce(nullif(application_name, ''), usename::text, backend_type) AS label
FROM pg_stat_activity
"""


@dataclass(slots=True)
class CpuFigures:
    wall: float
    seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process (tree) over the span, Postgres as one entry without the
    bench's own backends, which have an entry of their own."""
    itself: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each named process alone, without its children."""
    parts: dict[str, dict[str, float]] = field(default_factory=dict)
    """A tree's seconds split: Postgres by backend, a process with children by child."""


class PlatformCpu:
    """Snapshots of named process trees and of the Postgres postmaster's tree."""

    def __init__(self, roots: dict[str, int], postmaster: int, database_url: str) -> None:
        self._roots = roots
        self._postmaster = postmaster
        self._database_url = database_url
        self._conn: asyncpg.Connection | None = None
        self._before: Snapshot = {}
        self._labels: dict[int, str] = {}
        self._self_before = 0.0
        self._machine_before = 0.0
        self._started = 0.0
        self.figures: CpuFigures | None = None
        """Set by `stop()`."""

    async def __aenter__(self) -> PlatformCpu:
        self._conn = await asyncpg.connect(
            self._database_url, server_settings={"application_name": "awooop-bench-meter"}
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def _read_labels(self) -> dict[int, str]:
        assert self._conn is not None
        return {row["pid"]: row["label"] for row in await self._conn.fetch(_LABELS)}

    async def start(self) -> None:
        self._labels = await self._read_labels()
        self._self_before = self_seconds()
        self._machine_before = machine_busy_seconds()
        self._before = snapshot()
        self._started = time.monotonic()

    async def stop(self) -> None:
        """Take the second snapshot (before the bench closes its own connections)."""
        after = snapshot()
        machine = machine_busy_seconds() - self._machine_before
        wall = time.monotonic() - self._started
        spent_here = self_seconds() - self._self_before
        # Backends seen at either end keep a name; pids seen only in between do not.
        labels = {**self._labels, **await self._read_labels()}
        figures = CpuFigures(wall=wall)
        for name, pid in self._roots.items():
            figures.seconds[name] = tree_delta(self._before, after, pid)
            figures.itself[name] = pid_delta(self._before, after, pid)
            children = [child for child in tree(after, pid) if child != pid]
            if children:
                figures.parts[name] = self._split(
                    after, pid, figures.seconds[name], children, command_label, ITSELF
                )
        backends: list[int] = []
        bench: list[int] = []
        for pid in tree(after, self._postmaster):
            if pid != self._postmaster:
                mine = labels.get(pid, "").startswith(BENCH_APPLICATIONS)
                (bench if mine else backends).append(pid)
        bench_seconds = sum(pid_delta(self._before, after, pid) for pid in bench)
        total = tree_delta(self._before, after, self._postmaster) - bench_seconds
        figures.seconds[POSTGRES] = total
        figures.parts[POSTGRES] = self._split(
            after,
            self._postmaster,
            total,
            backends,
            lambda pid: labels.get(pid, "unnamed backend"),
            EXITED,
        )
        figures.seconds[BENCH_CLIENT] = spent_here
        figures.seconds[BENCH_BACKENDS] = bench_seconds
        figures.seconds[OTHERS] = machine - sum(figures.seconds.values())
        self.figures = figures

    def _split(
        self,
        after: Snapshot,
        root: int,
        total: float,
        members: list[int],
        label: Callable[[int], str],
        rest: str,
    ) -> dict[str, float]:
        """`total` by member label; what no live member accounts for goes to `rest`."""
        parts: dict[str, float] = defaultdict(float)
        for pid in members:
            parts[label(pid)] += pid_delta(self._before, after, pid)
        parts[rest] = total - sum(parts.values())
        return dict(sorted(parts.items(), key=lambda item: -item[1]))

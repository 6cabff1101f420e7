"""More than one process of a service in the bench (`AWOOOP_BENCH_REPLICAS`).

`runtime=2,mcp_gateway=2` starts a second runtime and a second gateway beside the
platform's own (named `runtime-2`, `mcp_gateway-2`): each joins its service's consumer
group, and the partitions are shared between the members. With replicas, every demo
MCP server (one per gateway process) journals the calls it serves to one file, so the
bench counts each run's tool call where it executes: a run executed twice, by two
members that both believed they owned it, would show as two. Each member's partitions
are read from its own `/metrics` (the lag gauge has one line per assigned partition).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from awooop.cli.platform import SERVICES
from support.demo_mcp import calls, read_journal
from support.platform_procs import RunningPlatform

JOURNAL = "demo-mcp-journal.jsonl"
_LAG_LINE = re.compile(r'^awooop_consumer_lag_records\{[^}]*topic="([^"]+)",?[^}]*\}', re.M)


def parse_replicas(text: str) -> dict[str, int]:
    """`runtime=2,mcp_gateway=2` → {"runtime": 2, "mcp_gateway": 2}; refuses anything else."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        service, _, count = part.partition("=")
        service = service.strip()
        if service not in SERVICES or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(
                f"AWOOOP_BENCH_REPLICAS: {part!r} is not <service>=<count ≥ 1> "
                f"with a service of {', '.join(SERVICES)}"
            )
        counts[service] = int(count)
    return counts


@dataclass
class Replicas:
    home: Path
    counts: dict[str, int]
    members: dict[str, list[str]] = field(default_factory=dict)
    """Service → the names of its processes, once started."""

    @property
    def any(self) -> bool:
        return any(count > 1 for count in self.counts.values())

    def environment(self) -> dict[str, str]:
        """The journal for every process (its MCP server children inherit it)."""
        return {"AWOOOP_DEMO_MCP_JOURNAL": str(self.home / JOURNAL)} if self.any else {}

    def start(self, running: RunningPlatform) -> None:
        for service, count in self.counts.items():
            names = [service, *(f"{service}-{n}" for n in range(2, count + 1))]
            for name in names[1:]:
                running.start(name, service=service)
            self.members[service] = names
        running.wait_ready()

    def executions(self) -> int | None:
        """`status` calls served by every demo MCP server (None without replicas)."""
        if not self.any:
            return None
        return len(calls(read_journal(self.home / JOURNAL), "status"))

    def partitions(self, running: RunningPlatform) -> dict[str, dict[str, int]]:
        """Process → topic → partitions assigned, for every service with replicas."""
        spread: dict[str, dict[str, int]] = {}
        for names in self.members.values():
            if len(names) < 2:
                continue
            for name in names:
                port = running.platform.health_ports[name]
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                topics: dict[str, int] = {}
                for topic in _LAG_LINE.findall(text):
                    topics[topic] = topics.get(topic, 0) + 1
                spread[name] = topics
        return spread

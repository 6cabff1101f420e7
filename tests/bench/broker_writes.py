"""Writes to the broker over the measured span, by process: a count, not a time.

Under load the broker's CPU follows how often the consumers fetch and the relays
produce (the performance page, sixth round), and the host's speed swings too much for
runs/s to show a change of a few per cent. So the bench counts, from the kernel's
socket statistics (`ss -tinpH`, iproute2), the TCP data segments each platform process
sent to the broker's port and those the broker sent back, at the span's start and end.
A segment carries one Kafka request, or several that the client wrote at once (uvloop
sends the writes it queued in one `write` when its loop goes idle), so segments count
the writes a request costs at both ends. A connection opened during the span counts
from zero; one closed during it is not seen (clients keep theirs open).

Without `ss`, or when it fails, the figure is reported as not measured with the reason;
nothing else depends on it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

import psutil
from span_counter import SpanCounter

OTHERS = "the bench and other processes"

_ENDPOINT = re.compile(r"^\S+\s+\S+\s+(\S+):(\d+)\s+(\S+):(\d+)\s+users:\(\(\"[^\"]*\",pid=(\d+)")
_SEGMENTS = re.compile(r"\bdata_segs_out:(\d+)")

Socket = tuple[str, int, str, int]
"""Local address, local port, peer address, peer port."""


@dataclass(slots=True)
class BrokerWrites:
    sent: dict[str, int] = field(default_factory=dict)
    """Process name → data segments it sent to the broker over the span."""
    answered: dict[str, int] = field(default_factory=dict)
    """Process name → data segments the broker sent to it over the span."""
    missing: str | None = None
    """Why nothing was counted (no `ss`), else None."""


def _snapshot(port: int) -> dict[Socket, tuple[int, int]]:
    """Every established socket to or from `port`: its owner's pid and data segments out."""
    done = subprocess.run(
        ["ss", "-tinpH", "state", "established", f"( dport = :{port} or sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    found: dict[Socket, tuple[int, int]] = {}
    current: Socket | None = None
    pid = 0
    for line in done.stdout.splitlines():
        if match := _ENDPOINT.match(line):
            local, local_port, peer, peer_port, owner = match.groups()
            current, pid = (local, int(local_port), peer, int(peer_port)), int(owner)
            found[current] = (pid, 0)
        elif current is not None and (segments := _SEGMENTS.search(line)):
            found[current] = (pid, int(segments.group(1)))
    return found


class BrokerWriteCounter(SpanCounter[dict[Socket, tuple[int, int]]]):
    """Counts the segments between the platform's processes and the broker over a span."""

    def __init__(self, roots: dict[str, int], broker_pid: int, port: int) -> None:
        self._names = {pid: name for name, pid in roots.items()}
        self._broker_pid = broker_pid
        self._port = port
        self.figures = BrokerWrites()
        if shutil.which("ss") is None:
            self.figures.missing = "`ss` (iproute2) is not installed"

    def _count(
        self, start: dict[Socket, tuple[int, int]], end: dict[Socket, tuple[int, int]]
    ) -> None:
        # Each client socket under the key the broker's end of it has.
        clients = {sock[2:] + sock[:2]: pid for sock, (pid, _) in end.items()}
        for sock, (pid, segments) in end.items():
            delta = segments - start.get(sock, (pid, 0))[1]
            if pid == self._broker_pid:
                # The broker's side of a connection: name the client at the other end.
                client = self._name(clients.get(sock, 0))
                self.figures.answered[client] = self.figures.answered.get(client, 0) + delta
            elif sock[3] == self._port:
                name = self._name(pid)
                self.figures.sent[name] = self.figures.sent.get(name, 0) + delta

    def _read(self) -> dict[Socket, tuple[int, int]] | None:
        """A snapshot, or None with the reason kept when `ss` cannot give one."""
        try:
            return _snapshot(self._port)
        except (OSError, subprocess.SubprocessError) as error:
            self.figures.missing = f"`ss` failed ({type(error).__name__}: {error})"
            return None

    def _name(self, pid: int) -> str:
        """The platform process `pid` belongs to (itself or an ancestor), else `OTHERS`."""
        try:
            process: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            return OTHERS
        while process is not None:
            if name := self._names.get(process.pid):
                return name
            try:
                process = process.parent()
            except psutil.Error:
                return OTHERS
        return OTHERS


def writes_table(writes: BrokerWrites, runs: int) -> list[str]:
    """The segments per run, by process: sent to the broker and answered by it."""
    if writes.missing is not None:
        return [f"Not measured: {writes.missing}."]
    names = sorted(set(writes.sent) | set(writes.answered), key=lambda n: -writes.sent.get(n, 0))
    lines = [
        "| process | segments to the broker | per run | segments from the broker | per run |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        sent, answered = writes.sent.get(name, 0), writes.answered.get(name, 0)
        lines.append(
            f"| {name} | {sent:,} | {sent / runs:.2f} | {answered:,} | {answered / runs:.2f} |"
        )
    sent, answered = sum(writes.sent.values()), sum(writes.answered.values())
    lines.append(
        f"| **every process** | **{sent:,}** | **{sent / runs:.2f}** "
        f"| **{answered:,}** | **{answered / runs:.2f}** |"
    )
    return lines

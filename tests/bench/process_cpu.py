"""CPU seconds of process trees, read from `/proc/<pid>/stat` before and after a span.

A tree's total counts every live member's own time (`utime + stime`) plus
what its members' exited children left in them when they were waited for
(`cutime + cstime`). A Postgres backend that exits during the span is
waited for by the postmaster, so its time moves into the postmaster's
`cutime`: the tree's total stays exact, only its attribution to a role is
lost. A child that outlives its parent and is reaped by init is lost.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    ppid: int
    start: int
    """Start time in clock ticks after boot: tells a recycled pid apart."""
    own: float
    """utime + stime, in seconds."""
    reaped: float
    """cutime + cstime: the exited children this process waited for, in seconds."""

    @property
    def total(self) -> float:
        return self.own + self.reaped


Snapshot = dict[int, ProcStat]


def read_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        start=int(fields[19]),
        own=(utime + stime) / CLOCK_TICKS,
        reaped=(cutime + cstime) / CLOCK_TICKS,
    )


def snapshot() -> Snapshot:
    """Every process this user can see."""
    stats = (read_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return {stat.pid: stat for stat in stats if stat is not None}


def tree(snap: Snapshot, root: int) -> list[int]:
    """`root` and its live descendants in `snap`."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in snap.values():
        children[stat.ppid].append(stat.pid)
    members: list[int] = []
    frontier = [root] if root in snap else []
    while frontier:
        pid = frontier.pop()
        members.append(pid)
        frontier.extend(children[pid])
    return members


def tree_seconds(snap: Snapshot, root: int) -> float:
    return sum(snap[pid].total for pid in tree(snap, root))


def tree_delta(before: Snapshot, after: Snapshot, root: int) -> float:
    """CPU seconds the tree under `root` spent between the two snapshots."""
    if root in before and root in after and before[root].start != after[root].start:
        raise RuntimeError(f"pid {root} was recycled during the measurement")
    return tree_seconds(after, root) - tree_seconds(before, root)


def pid_delta(before: Snapshot, after: Snapshot, pid: int) -> float:
    """CPU seconds one process (and the children it waited for) spent between the snapshots."""
    now = after.get(pid)
    if now is None:
        return 0.0
    then = before.get(pid)
    if then is None or then.start != now.start:
        return now.total
    return now.total - then.total


def command_label(pid: int) -> str:
    """`python -m module` as the module, anything else as its program's name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in args if a]
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    return Path(words[0]).name if words else f"pid {pid}"


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (`/proc/stat`)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def self_seconds() -> float:
    """This process's own CPU seconds (every thread), children excluded."""
    times = os.times()
    return times.user + times.system

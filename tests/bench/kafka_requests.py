"""The Kafka requests each platform process sent over the measured span, by type.

The broker's CPU follows the requests it answers, about 1 ms each on the embedded
broker whatever the load (the performance page, seventh round), so which requests a
run costs, and whose they are, is the count to cut. The bench starts every platform
process with `kafka_request_hook/` first on its `PYTHONPATH`; that folder's
`sitecustomize` counts the requests aiokafka sends, by type, and writes them on
`SIGUSR2`. The bench signals each process at the span's start and end and takes the
difference. Requests are counted where they are made, so a request that several
answers share, or several that share one TCP segment, each count once.

`AWOOOP_BENCH_KAFKA_REQUESTS=off` leaves the hook out; the figure is then reported as
not measured, and nothing else depends on it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from span_counter import SpanCounter

HOOK = Path(__file__).parent / "kafka_request_hook"
FOLDER_VARIABLE = "AWOOOP_BENCH_KAFKA_REQUESTS_DIR"
ENABLED = os.environ.get("AWOOOP_BENCH_KAFKA_REQUESTS", "on").strip().lower() not in (
    "off",
    "0",
    "no",
)
ANSWER_WAIT_SECONDS = 5.0
"""How long a signalled process may take to write its counts (its loop may be busy)."""

SHOWN = ("Fetch", "Produce", "OffsetCommit", "Heartbeat")
"""Request types with a column of their own; the rest are summed under `other`."""
BENCH = "the bench (its producer)"


@dataclass(slots=True)
class KafkaRequests:
    by_process: dict[str, dict[str, int]] = field(default_factory=dict)
    """Process name → request type (`Fetch`, `Produce`, …) → requests over the span."""
    missing: str | None = None
    """Why nothing was counted, else None."""


def hook_environment(folder: Path) -> dict[str, str]:
    """What a platform process needs in its environment to count its requests."""
    if not ENABLED:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    path = [str(HOOK), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path), FOLDER_VARIABLE: str(folder)}


def count_here(folder: Path) -> None:
    """Count the bench's own requests (its producer) as the platform's processes count
    theirs: the broker answers them in the same span."""
    if not ENABLED:
        return
    spec = importlib.util.spec_from_file_location("kafka_request_hook", HOOK / "sitecustomize.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    hook.install(str(folder))


def _catches_sigusr2(pid: int) -> bool | None:
    """Whether process `pid` handles `SIGUSR2` (its `SigCgt` mask), None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGUSR2 - 1) & 1)
    return False


def _type(name: str) -> str:
    """`FetchRequest` → `Fetch` (aiokafka's class names, version suffix or not)."""
    return name.split("Request")[0]


class KafkaRequestCounter(SpanCounter[dict[str, dict[str, int]]]):
    """Signals the platform's Python processes at the span's start and end."""

    def __init__(self, roots: dict[str, int], folder: Path) -> None:
        self._roots = roots
        self._folder = folder
        self._asked: dict[int, int] = {}
        self.figures = KafkaRequests()
        if not ENABLED:
            self.figures.missing = "`AWOOOP_BENCH_KAFKA_REQUESTS=off`"

    def _count(self, start: dict[str, dict[str, int]], end: dict[str, dict[str, int]]) -> None:
        for name, counts in end.items():
            before = start.get(name, {})
            self.figures.by_process[name] = {
                kind: count - before.get(kind, 0) for kind, count in counts.items()
            }

    def _read(self) -> dict[str, dict[str, int]] | None:
        """Each process's counts now, or None with the reason kept."""
        pending: dict[int, str] = {}
        for name, pid in self._roots.items():
            catches = _catches_sigusr2(pid)
            if catches is None:
                continue  # a process that is gone sends nothing more
            if not catches:
                # Its default action would end the process: the hook is not loaded there.
                self.figures.missing = f"{name} does not count its requests (no hook)"
                return None
            os.kill(pid, signal.SIGUSR2)
            pending[pid] = name
        found: dict[str, dict[str, int]] = {}
        deadline = time.monotonic() + ANSWER_WAIT_SECONDS
        while pending and time.monotonic() < deadline:
            for pid, name in list(pending.items()):
                answer = self._answer(pid)
                if answer is not None and answer[0] > self._asked.get(pid, 0):
                    self._asked[pid] = answer[0]
                    found[name] = answer[1]
                    del pending[pid]
            if pending:
                time.sleep(0.01)
        if pending:
            silent = ", ".join(sorted(pending.values()))
            self.figures.missing = f"no counts from {silent} within {ANSWER_WAIT_SECONDS:.0f} s"
            return None
        return found

    def _answer(self, pid: int) -> tuple[int, dict[str, int]] | None:
        try:
            written = json.loads((self._folder / f"{pid}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        counts: dict[str, int] = {}
        for name, count in written["counts"].items():
            counts[_type(name)] = counts.get(_type(name), 0) + int(count)
        return int(written["asked"]), counts


def requests_table(requests: KafkaRequests, runs: int, broker_cpu_s: float) -> list[str]:
    """Requests per run, by process and type, and the broker's CPU per request."""
    if requests.missing is not None:
        return [f"Not measured: {requests.missing}."]
    rows = {name: counts for name, counts in requests.by_process.items() if sum(counts.values())}
    totals: dict[str, int] = {}
    for counts in rows.values():
        for kind, count in counts.items():
            totals[kind] = totals.get(kind, 0) + count
    header = "| process | " + " | ".join(SHOWN) + " | other | every request |"
    lines = [header, "|---" * (len(SHOWN) + 3) + "|"]

    def row(label: str, counts: dict[str, int], bold: bool = False) -> str:
        other = sum(c for kind, c in counts.items() if kind not in SHOWN)
        cells = [counts.get(kind, 0) / runs for kind in SHOWN] + [other / runs]
        cells.append(sum(counts.values()) / runs)
        text = [f"{cell:.3f}" for cell in cells]
        if bold:
            text = [f"**{cell}**" for cell in text]
            label = f"**{label}**"
        return f"| {label} | " + " | ".join(text) + " |"

    for name in sorted(rows, key=lambda n: -sum(rows[n].values())):
        lines.append(row(name, rows[name]))
    lines.append(row("every process", totals, bold=True))
    every = sum(totals.values())
    if every:
        lines += [
            "",
            f"The broker's CPU per request it answered: {broker_cpu_s * 1000 / every:.2f} ms "
            f"({broker_cpu_s:.2f} CPU s over {every:,} requests).",
        ]
    return lines

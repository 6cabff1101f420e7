"""The benchmark's figures as Markdown tables, printed and written to `docs/performance.md`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from approved_runs import ApprovedFigures, approved_table
from bridge_load import BRIDGE_CONCURRENCY
from broker_writes import BrokerWrites, writes_table
from copy_baseline import CopyBaseline
from efficiency import PipelineFloor
from fetch_wakeup import SERVICES_FETCH_WAIT_MS
from gate_evaluation import GATE_P99_TARGET_MS, GateFigures
from gateway_overhead import BATCH, GROUP, OVERHEAD_TARGET, OverheadFigures
from kafka_baseline import KafkaBaseline
from kafka_requests import KafkaRequests, requests_table
from platform_cpu import NOT_PLATFORM, CpuFigures
from read_model_rebuild import COPY_ROUNDS, RebuildFigures
from skeleton_load import LoadResult
from timeline_gaps import SEEN

from awooop.ingress.bridges.load import LoadReport

BROKER = "broker (tansu)"
"""The embedded broker's name in the CPU figures."""


@dataclass(frozen=True, slots=True)
class BenchParameters:
    runs: int
    concurrency: int
    warmup: int
    poll_interval: float
    rounds: int
    project: str
    durable: bool = True
    """The embedded Postgres flushed every commit (`fsync`, `synchronous_commit`)."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per service, where more than one."""
    profiled: bool = False
    """py-spy sampled the services and `pg_stat_statements` counted: figures not comparable."""


@dataclass(frozen=True, slots=True)
class Figures:
    parameters: BenchParameters
    load: LoadResult
    cpu: CpuFigures
    kafka: KafkaBaseline
    wakeup: dict[int, list[float]]
    """Fetch wait (ms) → seconds from produce to an idle consumer, one record each."""
    copy: CopyBaseline
    runs_rows: int
    timeline_rows: int
    gaps: dict[str, list[float]]
    rebuild: RebuildFigures
    bridge: LoadReport
    gates: GateFigures
    overhead: OverheadFigures
    approved: ApprovedFigures
    executions: int | None = None
    """`status` calls the demo MCP servers journaled for the skeleton runs (with replicas)."""
    spread: dict[str, dict[str, int]] = field(default_factory=dict)
    """Process of a replicated service → topic → partitions it held after the runs."""
    appended: dict[str, int] = field(default_factory=dict)
    """Service schema → events appended to its event store over the measured span."""
    half_load: LoadResult | None = None
    """The same runs produced open loop at half the measured runs/s, after the baselines."""
    half_gaps: dict[str, list[float]] = field(default_factory=dict)
    """`gaps` of the half-load runs."""
    relay_lags: dict[str, list[float]] = field(default_factory=dict)
    """Event type → seconds from its decision to the relay's send, over the runs."""
    half_relay_lags: dict[str, list[float]] = field(default_factory=dict)
    """`relay_lags` of the half-load runs."""
    writes: BrokerWrites | None = None
    """TCP data segments between each platform process and the broker over the span."""
    requests: KafkaRequests | None = None
    """The Kafka requests each platform Python process sent over the span, by type."""

    @property
    def latencies(self) -> list[float]:
        return [r.produce_to_timeline for r in self.load.runs if r.state == "completed"]

    @property
    def runs_per_s(self) -> float:
        return len(self.latencies) / self.load.elapsed

    @property
    def rows_per_s(self) -> float:
        return (self.runs_rows + self.timeline_rows) / self.load.elapsed

    @property
    def platform_cpu(self) -> float:
        return sum(v for k, v in self.cpu.seconds.items() if k not in NOT_PLATFORM)

    @property
    def floor(self) -> PipelineFloor:
        """The least I/O of the measured runs at the raw baselines' rates."""
        return PipelineFloor(
            runs=len(self.load.runs),
            rows=self.runs_rows + self.timeline_rows,
            records_per_s=self.kafka.round_trip_rate,
            copy_rows_per_s=self.copy.rate,
            appended=self.appended,
        )

    @property
    def efficiency(self) -> float:
        """Platform runs/s ÷ the floor's runs/s."""
        return self.floor.efficiency(self.runs_per_s)


STEP_PATHS = {
    "ingress.message_received": "broker, ingress fetch and batch",
    "run.started": "ingress relay, broker, runtime fetch and batch",
    "run.tool_call_requested": "the first step, in the runtime batch that started the run",
    "gateway.tool_call_succeeded": "runtime relay, broker, gateway fetch, gate, MCP call",
    "run.tool_result_accepted": "gateway relay, broker, runtime fetch and batch",
    "run.completed": "the second step, in the runtime batch that took the result",
    SEEN: "runtime relay, broker, projector fetch and batch, bench poll",
}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _ms(values: list[float]) -> str:
    picks = [percentile(values, p) * 1000 for p in (50, 95, 99)]
    return " / ".join(f"{v:,.0f}" for v in picks) + f" (max {max(values) * 1000:,.0f})"


def run_table(f: Figures) -> list[str]:
    done = len(f.latencies)
    return [
        "| figure | value |",
        "|---|---|",
        f"| runs completed | {done:,} of {len(f.load.runs):,} |",
        f"| first produce to last run seen completed | {f.load.elapsed:,.1f} s |",
        f"| **runs/s** | **{f.runs_per_s:,.1f}** |",
        f"| **produce → `completed` in the read model**, p50 / p95 / p99, ms "
        f"| **{_ms(f.latencies)}** |",
        *half_load_rows(f),
        f"| read-model rows written (`runs` + `timeline`) | {f.runs_rows:,} + "
        f"{f.timeline_rows:,} ({f.timeline_rows / max(1, f.runs_rows):.1f} per run) |",
        f"| read-model rows/s | {f.rows_per_s:,.0f} |",
        f"| mean inbound record (key + value) | {f.load.record_bytes:,.0f} B |",
    ]


HALF_LOAD_P99_TARGET_MS = 150


def half_load_rows(f: Figures) -> list[str]:
    """The half-load phase: its rate, and produce → `completed` at that rate."""
    half = f.half_load
    if half is None or not half.runs:
        return []
    done = [r.produce_to_timeline for r in half.runs if r.state == "completed"]
    rate = len(half.runs) / half.elapsed if half.elapsed else 0.0
    return [
        f"| half load: {len(half.runs):,} runs produced at half the runs/s above, open loop "
        f"| {rate:,.1f} runs/s, {len(done):,} completed |",
        "| **produce → `completed` at half load**, p50 / p95 / p99, ms (target: p99 ≤ "
        f"{HALF_LOAD_P99_TARGET_MS} ms) | **{_ms(done) if done else 'none'}** |",
    ]


def gap_table(f: Figures) -> list[str]:
    def half(step: str) -> str:
        values = f.half_gaps.get(step)
        return _ms(values) if values else "none"

    return [
        "| step | in between | gap before it, p50 / p95 / p99, ms | at half load |",
        "|---|---|---|---|",
        *(
            f"| {step} | {STEP_PATHS.get(step, '')} | {_ms(values)} | {half(step)} |"
            for step, values in f.gaps.items()
        ),
    ]


HOP_OF = {
    "ingress.message_received": "run.started",
    "run.tool_call_requested": "gateway.tool_call_succeeded",
    "gateway.tool_call_succeeded": "run.tool_result_accepted",
    "run.completed": SEEN,
}
"""The event whose relay starts a hop of the run's path → the step that hop ends at."""


def relay_table(f: Figures) -> list[str]:
    """The part of each hop before the broker, by the event that starts the hop."""
    if not f.relay_lags:
        return []

    def cell(lags: dict[str, list[float]], event: str) -> str:
        values = lags.get(event)
        return _ms(values) if values else "none"

    def hop(event: str) -> str:
        ends = HOP_OF.get(event)
        return f"the gap before {ends}" if ends else "none: the step in its batch follows it"

    return [
        "The part of each hop before the broker: from the event's `occurred_at` to its "
        "relay's send (the record's timestamp, in whole milliseconds), by the event that "
        "starts the hop:",
        "",
        "| event | part of | decided → sent by its relay, p50 / p95 / p99, ms | at half load |",
        "|---|---|---|---|",
        *(
            f"| {event} | {hop(event)} | {cell(f.relay_lags, event)} "
            f"| {cell(f.half_relay_lags, event)} |"
            for event in f.gaps
            if event in f.relay_lags
        ),
        "",
    ]


def _cpu_row(name: str, seconds: float, runs: int, wall: float) -> str:
    return f"| {name} | {seconds:,.2f} | {seconds / runs * 1000:,.2f} | {seconds / wall:.2f} |"


def cpu_table(f: Figures) -> list[str]:
    cpu, runs = f.cpu, len(f.load.runs)
    lines = ["| process | CPU s | ms per run | cores busy |", "|---|---|---|---|"]
    order = sorted((n for n in cpu.seconds if n not in NOT_PLATFORM), key=lambda n: -cpu.seconds[n])
    for name in order:
        lines.append(_cpu_row(name, cpu.seconds[name], runs, cpu.wall))
        for part, seconds in cpu.parts.get(name, {}).items():
            if abs(seconds) >= 0.005:
                lines.append(_cpu_row(f"&nbsp;&nbsp;↳ {part}", seconds, runs, cpu.wall))
    total = f.platform_cpu
    lines.append(
        f"| **all platform processes** | **{total:,.2f}** | **{total / runs * 1000:,.2f}** "
        f"| **{total / cpu.wall:.2f}** |"
    )
    lines += [_cpu_row(name, cpu.seconds[name], runs, cpu.wall) for name in NOT_PLATFORM]
    return lines


def broker_writes_lines(f: Figures) -> list[str]:
    """The writes between the platform and the broker over the span, when counted."""
    if f.writes is None:
        return []
    return [
        "Writes between each process and the broker over the same span (TCP data segments, "
        "from `ss`; a segment is one request or response, or several written at once):",
        "",
        *writes_table(f.writes, len(f.load.runs)),
        "",
    ]


def kafka_requests_lines(f: Figures) -> list[str]:
    """The Kafka requests per run over the span, by process and type, when counted."""
    if f.requests is None:
        return []
    broker = f.cpu.seconds.get(BROKER, 0.0)
    return [
        "Kafka requests per run over the same span, by the process that sent them (counted "
        "in each process as aiokafka sends them):",
        "",
        *requests_table(f.requests, len(f.load.runs), broker),
        "",
    ]


def baseline_tables(f: Figures) -> list[str]:
    k, c = f.kafka, f.copy
    return [
        "| baseline | count | seconds | per second |",
        "|---|---|---|---|",
        f"| raw aiokafka produce (per-partition `send_batch`, acks=all) | {k.records:,} records "
        f"| {k.produce_seconds:.3f} | {k.produce_rate:,.0f} |",
        f"| raw aiokafka consume (`getmany` + commit), fetch wait {k.fetch_wait_ms} ms "
        f"| {k.records:,} records | {k.consume_seconds:.3f} | {k.consume_rate:,.0f} |",
        f"| **raw aiokafka produce + consume** | {k.records:,} records "
        f"| {k.produce_seconds + k.consume_seconds:.3f} | **{k.round_trip_rate:,.0f}** |",
        f"| **raw `COPY` of the same read-model rows** | {c.runs_rows:,} + "
        f"{c.timeline_rows:,} rows | {c.seconds:.3f} | **{c.rate:,.0f}** |",
        "",
        "| ratio | value |",
        "|---|---|",
        f"| platform runs/s ÷ raw produce + consume records/s "
        f"| {f.runs_per_s / k.round_trip_rate:.4f} (1 : {k.round_trip_rate / f.runs_per_s:,.0f}) |",
        f"| projector read-model rows/s ÷ raw `COPY` rows/s "
        f"| {f.rows_per_s / c.rate:.4f} (1 : {c.rate / f.rows_per_s:,.0f}) |",
        *efficiency_rows(f),
    ]


def efficiency_rows(f: Figures) -> list[str]:
    """The floor's inputs and the pipeline efficiency (none without the events counted)."""
    if not f.appended:
        return []
    floor, runs = f.floor, len(f.load.runs)
    stores = ", ".join(f"`{store}` {count / runs:.2f}" for store, count in f.appended.items())
    return [
        f"| records per run through the broker: the inbound one + events appended ({stores}) "
        f"| {floor.records_per_run:.2f} |",
        f"| read-model rows per run (`runs` + `timeline`) | {floor.rows_per_run:.2f} |",
        "| floor runs/s: 1 ÷ (records per run ÷ raw produce + consume records/s + rows per run "
        f"÷ raw `COPY` rows/s) | {floor.runs_per_s:,.1f} |",
        "| **pipeline efficiency**: platform runs/s ÷ the floor of the same runs' I/O "
        f"| **{f.efficiency:.4f}** (1 : {1 / f.efficiency:,.1f}) |",
    ]


def replica_table(f: Figures) -> list[str]:
    """Each replicated service's processes with the partitions they held, per topic."""
    lines = ["| service | process | partitions held, per topic |", "|---|---|---|"]
    for process, topics in f.spread.items():
        held = ", ".join(f"`{topic}` {count}" for topic, count in sorted(topics.items()))
        lines.append(f"| {process.split('-')[0]} | {process} | {held or 'none'} |")
    return lines


def executions_line(f: Figures) -> str:
    """The `status` calls the demo MCP servers served against the runs (with replicas)."""
    half = len(f.half_load.runs) if f.half_load is not None else 0
    runs = f.parameters.runs + f.parameters.warmup + half
    executions = f.executions or 0
    verdict = (
        "every run executed once"
        if executions == runs
        else f"{executions - runs:+,} against one call per run"
    )
    return (
        f"The demo MCP servers served {executions:,} `status` calls for {runs:,} runs "
        f"(warm-up and half load included): {verdict}."
    )


REBUILD_TARGET = 0.25
REBUILD_AIM = 0.5
"""Rebuild rows/s ÷ raw `COPY` rows/s of the same rows: what the rebuild should reach."""


def _per_table(table_rows: dict[str, int]) -> str:
    return " + ".join(f"{rows:,} `{table}`" for table, rows in table_rows.items())


def bridge_table(f: Figures) -> list[str]:
    b = f.bridge
    answered = ", ".join(
        f"{count:,} answered {status}" for status, count in sorted(b.statuses.items())
    )
    return [
        "| figure | value |",
        "|---|---|",
        f"| requests (Telegram updates, {BRIDGE_CONCURRENCY} at a time) | {b.requests:,} |",
        f"| answers | {answered} |",
        f"| **acknowledged requests/s** | **{b.acknowledged_per_second:,.0f}** |",
        f"| **ack p99** (request in → broker ack → 200) | **{b.ack_p99_ms:,.1f} ms** |",
    ]


GATE_OUTCOMES = {
    "admitted": "admitted (no event: the executor runs it)",
    "approval_required": "held for an approval (`gateway.approval_required`)",
    "blocked": "refused (`gateway.tool_call_blocked`)",
}


def _us(values: list[float]) -> str:
    picks = (percentile(values, 50), percentile(values, 99), max(values))
    return " / ".join(f"{v:,.1f}" for v in picks)


def gate_table(f: Figures) -> list[str]:
    g = f.gates
    codes = ", ".join(f"{count:,} `{code}`" for code, count in g.codes.items())
    rows = [
        f"| {GATE_OUTCOMES.get(outcome, outcome)} | {len(values):,} | {_us(values)} |"
        for outcome, values in sorted(g.micros.items(), key=lambda item: -len(item[1]))
    ]
    return [
        "| calls | count | p50 / p99 / max, µs |",
        "|---|---|---|",
        f"| **every call** (target: p99 under {GATE_P99_TARGET_MS * 1000:,.0f} µs) "
        f"| **{len(g.samples):,}** | **{_us(g.samples)}** |",
        *rows,
        "",
        f"Refusals by code: {codes}; {g.projects} projects in the contract view; garbage "
        f"collections during the timed calls, by generation: {', '.join(map(str, g.collections))}.",
    ]


def overhead_table(f: Figures) -> list[str]:
    o = f.overhead
    direct = o.direct_ms
    spread = f"{percentile(o.batch_ms, 50):.3f} / {max(o.batch_ms):.3f}"
    return [
        "| figure | value |",
        "|---|---|",
        f"| calls through the gateway (batches of {BATCH}, claims and records of {GROUP}; "
        f"rate limit in {o.limiter}) | {o.calls:,} |",
        f"| decide: inbox, gates 1 to 5, decisions `INSERT` | {o.part_ms('decide'):.3f} ms |",
        f"| claim: `call_transactions.claim`, first group | {o.part_ms('claim'):.3f} ms |",
        f"| answer handling: pin check, `shape_answer` | {o.part_ms('answer'):.3f} ms |",
        f"| record: `finish`, outcome events appended, the next group claimed | "
        f"{o.part_ms('record'):.3f} ms |",
        f"| **the gateway's own time per call** (per batch: p50 / max) "
        f"| **{o.own_ms:.3f} ms** ({spread}) |",
        f"| direct SDK `call_tool` to the same server, p50 / p99 ({len(direct):,} calls) "
        f"| {o.direct_p50_ms:.3f} / {percentile(direct, 99):.3f} ms |",
        f"| **own time ÷ direct call** (target: under {OVERHEAD_TARGET:.0%}) | **{o.share:.1%}** |",
    ]


def rebuild_table(f: Figures) -> list[str]:
    r, c = f.rebuild, f.rebuild.copy
    equal = "no: " + "; ".join(r.differences) if r.differences else "yes, every table and project"
    return [
        "| figure | value |",
        "|---|---|",
        f"| records read from offset 0 | {r.records:,} |",
        f"| events folded (refused) | {r.events:,} ({r.poison:,}) |",
        f"| read-model rows written, every project | {_per_table(r.table_rows)} = {r.rows:,} |",
        f"| rebuild time: log reader start → swapped, old schema dropped | {r.seconds:,.2f} s |",
        f"| the whole call, fresh schema and its migrations included | {r.call_seconds:,.2f} s |",
        f"| **rebuild events/s** | **{r.events_per_s:,.0f}** |",
        f"| **rebuild rows/s** | **{r.rows_per_s:,.0f}** |",
        f"| **raw `COPY` of the same rows** (median of {COPY_ROUNDS}) "
        f"| {c.rows:,} rows in {c.seconds:.3f} s: **{c.rate:,.0f} rows/s** |",
        f"| **rebuild rows/s ÷ raw `COPY` rows/s** (target {REBUILD_TARGET}, aim {REBUILD_AIM}) "
        f"| **{r.ratio:.3f}** (1 : {1 / r.ratio:,.1f}) |",
        f"| rebuilt digests equal the live ones before it | {equal} |",
    ]


def wakeup_table(f: Figures) -> list[str]:
    def picks(values: list[float]) -> str:
        return " / ".join(f"{percentile(values, p) * 1000:,.1f}" for p in (50, 95, 100))

    return [
        "| consumer's `fetch_max_wait_ms` | samples | produce → consumed, p50 / p95 / max, ms |",
        "|---|---|---|",
        *(
            f"| {wait} ms{' (the services)' if wait == SERVICES_FETCH_WAIT_MS else ''} "
            f"| {len(values)} | {picks(values)} |"
            for wait, values in f.wakeup.items()
        ),
    ]


def all_tables(f: Figures) -> list[str]:
    return [
        *run_table(f),
        "",
        "Where the time goes (the gap before each step of a run):",
        "",
        *gap_table(f),
        "",
        *relay_table(f),
        "CPU over the same span (first produce to last run seen completed):",
        "",
        *cpu_table(f),
        "",
        *broker_writes_lines(f),
        *kafka_requests_lines(f),
        f"Baselines on the same broker and Postgres (median of {f.parameters.rounds} rounds):",
        "",
        *baseline_tables(f),
        "",
        "One record to a consumer that sat idle in a fetch, on the same broker:",
        "",
        *wakeup_table(f),
        "",
        "The gateway's decision per tool call, in process (no database, no MCP call):",
        "",
        *gate_table(f),
        "",
        "The gateway's own time per call against the bench's Postgres, MCP call excluded, "
        "beside a direct MCP SDK call:",
        "",
        *overhead_table(f),
        "",
        "Approved runs: a restart in `suggest` mode each, approved by an automatic approver:",
        "",
        *approved_table(f.approved, percentile),
        "",
        "The read models rebuilt from the log afterwards, on the same platform:",
        "",
        *rebuild_table(f),
        "",
        "The Telegram webhook bridge, last (verify, frame, produce, 200 after the ack):",
        "",
        *bridge_table(f),
    ]


def efficiency_line(f: Figures) -> list[str]:
    """The pipeline efficiency in one line (none without the events counted)."""
    if not f.appended:
        return []
    floor = f.floor
    return [
        f"pipeline efficiency {f.efficiency:.4f}: {f.runs_per_s:,.1f} runs/s against a floor "
        f"of {floor.runs_per_s:,.1f} ({floor.records_per_run:.2f} records through the broker, "
        f"{floor.rows_per_run:.2f} read-model rows per run)"
    ]


def stdout_report(f: Figures) -> str:
    p = f.parameters
    head = (
        f"skeleton bench: {p.runs:,} runs, concurrency {p.concurrency}, "
        f"{p.warmup} warm-up runs, poll every {p.poll_interval * 1000:.0f} ms, "
        f"Postgres fsync={'on' if p.durable else 'off'}"
        + (" (profiled: not comparable)" if p.profiled else "")
    )
    spread = [] if f.executions is None else ["", *replica_table(f), "", executions_line(f)]
    return "\n".join(["", head, *efficiency_line(f), *spread, "", *all_tables(f), ""])

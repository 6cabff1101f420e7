"""`docs/performance.md`: what the benchmark measures, on what, one run's figures, caveats."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import textwrap
from pathlib import Path

from approved_runs import APPROVED_CONCURRENCY, APPROVED_RUNS
from approved_runs import POLL as APPROVAL_POLL
from efficiency import STORES
from fetch_wakeup import AIOKAFKA_DEFAULT_WAIT_MS, SERVICES_FETCH_WAIT_MS
from gate_evaluation import ARRIVAL_MS, GATE_P99_TARGET_MS, WARMUP
from gateway_overhead import BATCH, GROUP, OVERHEAD_TARGET, WARMUP_BATCHES
from platform_cpu import EXITED, NOT_PLATFORM, POSTGRES
from read_model_rebuild import COPY_ROUNDS
from report import (
    REBUILD_AIM,
    REBUILD_TARGET,
    STEP_PATHS,
    BenchParameters,
    Figures,
    all_tables,
    executions_line,
    percentile,
    replica_table,
)


def machine() -> dict[str, str]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False)
    return {
        "cores": str(os.cpu_count()),
        "CPU": model,
        "memory": memory,
        "`uname -a`": f"`{uname.stdout.strip()}`",
        "Python": platform.python_version(),
    }


def _p50_ms(values: list[float]) -> float:
    return percentile(values, 50) * 1000


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:,.0f} ms" if round(low) == round(high) else f"{low:,.0f} to {high:,.0f} ms"


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    """Lines of at most 80 characters that never break inside a `code span`."""
    kept = re.sub(r"`[^`]*`", lambda span: span.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(kept, 80, initial_indent=first, subsequent_indent=rest)
    return [line.replace("\0", " ") for line in lines]


def bullets(*items: str) -> list[str]:
    """Markdown list items, wrapped."""
    lines: list[str] = []
    for item in items:
        lines += _wrap(item, "- ", "  ")
    return lines


def paragraph(text: str) -> list[str]:
    return _wrap(text)


def reading(f: Figures) -> list[str]:
    """What this run's figures say, computed from them."""
    cores = os.cpu_count() or 1
    wall = f.cpu.wall
    busy = f.platform_cpu / wall
    machine_busy = sum(f.cpu.seconds.values()) / wall
    busiest = max(f.cpu.itself, key=lambda name: f.cpu.itself[name])
    busiest_cores = f.cpu.itself[busiest] / wall
    mean = statistics.fmean(f.latencies)
    if busiest_cores >= 0.7:
        verdict = f"{busiest} is close to a full core and bounds the throughput"
    elif machine_busy < 0.75 * cores:
        verdict = "no process and no core is saturated, so the runs wait more than they compute"
    else:
        verdict = (
            "no platform process is saturated, but the machine is, so part of every wait "
            "is a wait for a core"
        )
    items = [
        f"**CPU or waiting.** The platform's processes kept {busy:.2f} of {cores} cores busy, "
        f"the busiest single process ({busiest}) {busiest_cores:.2f} of one core; the whole "
        f"machine, the bench and every other process included, {machine_busy:.2f} cores. "
        f"With {f.parameters.concurrency} runs in flight and a mean produce → `completed` of "
        f"{mean:.2f} s, Little's law predicts {f.parameters.concurrency / mean:,.0f} runs/s; "
        f"{f.runs_per_s:,.1f} were measured: {verdict}.",
    ]
    runs = len(f.load.runs)
    per_run = {n: v / runs * 1000 for n, v in f.cpu.seconds.items() if n not in NOT_PLATFORM}
    top = sorted(per_run, key=lambda name: -per_run[name])[:3]
    most = ", ".join(f"{name} {per_run[name]:,.2f} ms" for name in top)
    pg_parts = {k: v for k, v in f.cpu.parts.get(POSTGRES, {}).items() if k != EXITED}
    if pg_parts:
        pg_top = max(pg_parts, key=lambda part: pg_parts[part])
        most += (
            f"; inside Postgres, the `{pg_top}` backends ({pg_parts[pg_top] / runs * 1000:,.2f} ms)"
        )
    items.append(f"**Most CPU per run**: {most}.")
    hops = [_p50_ms(v) for s, v in f.gaps.items() if "broker" in STEP_PATHS.get(s, "")]
    steps = [_p50_ms(v) for s, v in f.gaps.items() if "broker" not in STEP_PATHS.get(s, "broker")]
    if hops and steps:
        lead = (
            "Hops through the broker dominate the latency."
            if min(hops) > max(steps)
            else "Broker hops and local steps."
        )
        items.append(
            f"**{lead}** The {len(hops)} gaps that cross the broker have p50s of "
            f"{_span(hops)}; the runtime's {len(steps)} local steps {_span(steps)}."
        )
    waits = f.wakeup
    if SERVICES_FETCH_WAIT_MS in waits and AIOKAFKA_DEFAULT_WAIT_MS in waits:
        slow = _p50_ms(waits[AIOKAFKA_DEFAULT_WAIT_MS])
        fast = _p50_ms(waits[SERVICES_FETCH_WAIT_MS])
        why = (
            " the embedded broker answers a parked fetch at its own polling step rather than "
            "when a record arrives, which is why the services wait only briefly on it."
            if slow > 5 * fast
            else " the fetch wait costs the hops little on this broker."
        )
        items.append(
            f"**The fetch wait.** One record reached an idle consumer after {slow:,.0f} ms "
            f"(p50) with aiokafka's default `fetch_max_wait_ms` of {AIOKAFKA_DEFAULT_WAIT_MS} ms, "
            f"and after {fast:,.1f} ms with the services' {SERVICES_FETCH_WAIT_MS} ms:{why}"
        )
    r = f.rebuild
    met = (
        "which meets the aim"
        if r.ratio >= REBUILD_AIM
        else "which meets the target"
        if r.ratio >= REBUILD_TARGET
        else f"short of the {REBUILD_TARGET} target"
    )
    items.append(
        f"**The rebuild.** {r.events:,} events became {r.rows:,} rows in {r.seconds:,.2f} s "
        f"({r.events_per_s:,.0f} events/s, {r.rows_per_s:,.0f} rows/s); `COPY` wrote the "
        f"same rows at {r.copy.rate:,.0f} rows/s, a ratio of {r.ratio:.3f}, {met}."
    )
    items += _gateway_reading(f)
    a = f.approved
    items.append(
        f"**Approved runs** completed at {a.runs_per_s:,.1f} runs/s with "
        f"{APPROVED_CONCURRENCY} in flight, p50 produce → `completed` "
        f"{percentile(a.latencies, 50) * 1000:,.0f} ms: each waits for the approval "
        "service's request, the approver's next poll of the read model, its vote, the "
        "grant through the runtime and the gateway's second pass of the gates."
    )
    b = f.bridge
    items.append(
        f"**The Telegram bridge** acknowledged {b.acknowledged:,} of {b.requests:,} webhook "
        f"requests at {b.acknowledged_per_second:,.0f} requests/s, p99 "
        f"{b.ack_p99_ms:,.1f} ms from request to the 200 sent after the broker's ack "
        "(in process over ASGI, no HTTP server: the bridge and the broker's figures)."
    )
    return bullets(*items)


def _gateway_reading(f: Figures) -> list[str]:
    g, o = f.gates, f.overhead
    p99_ms = percentile(g.samples, 99) / 1000
    gate_met = "within" if p99_ms < GATE_P99_TARGET_MS else "over"
    parts = sorted(o.seconds, key=lambda part: -o.seconds[part])
    split = ", ".join(f"{part} {o.part_ms(part):.3f} ms" for part in parts)
    overhead_met = "within" if o.share < OVERHEAD_TARGET else "over"
    return [
        f"**The gate decision** took {p99_ms * 1000:,.0f} µs at the 99th percentile over "
        f"{len(g.samples):,} calls, {gate_met} the {GATE_P99_TARGET_MS * 1000:,.0f} µs target "
        f"(p50 {percentile(g.samples, 50):,.0f} µs).",
        f"**The gateway's own time** was {o.own_ms:.3f} ms a call ({split}) against "
        f"{o.direct_p50_ms:.3f} ms for a direct SDK call to the same server: "
        f"{o.share:.1%}, {overhead_met} the {OVERHEAD_TARGET:.0%} target.",
    ]


def durability(p: BenchParameters) -> str:
    if p.durable:
        return "durable: `fsync=on`, `synchronous_commit=on` (`AWOOOP_BENCH_DURABLE`)"
    return "`fsync=off` (`AWOOOP_BENCH_DURABLE=off`)"


def processes(p: BenchParameters) -> str:
    more = ", ".join(f"{service} {count}" for service, count in p.replicas.items() if count > 1)
    if not more:
        return "one of each (`AWOOOP_BENCH_REPLICAS`)"
    return f"{more}, one of every other service (`AWOOOP_BENCH_REPLICAS`)"


def parameter_lines(f: Figures) -> list[str]:
    """The "Machine and parameters" table, and a warning when the run was profiled."""
    p = f.parameters
    lines = [
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine().items()),
        f"| runs | {p.runs:,} (`AWOOOP_BENCH_RUNS`) |",
        f"| concurrency | {p.concurrency} (`AWOOOP_BENCH_CONCURRENCY`) |",
        f"| warm-up runs | {p.warmup} (`AWOOOP_BENCH_WARMUP`) |",
        f"| poll interval | {p.poll_interval * 1000:.0f} ms |",
        f"| Postgres durability | {durability(p)} |",
        f"| processes per service | {processes(p)} |",
        f"| measured on | {dt.datetime.now(dt.UTC).date().isoformat()} |",
    ]
    if p.profiled:
        lines += [
            "",
            *_wrap(
                "**Profiled run (`AWOOOP_BENCH_PROFILE`).** py-spy sampled every Python "
                "service and Postgres counted its statements over the measured span: these "
                "figures were taken under sampling and are not comparable with those of "
                "other runs.",
                "> ",
                "> ",
            ),
        ]
    return lines


def replicas_section(f: Figures) -> list[str]:
    """`## Replicas`, only when the run had more than one process of a service."""
    if f.executions is None:
        return []
    return [
        "## Replicas",
        "",
        *paragraph(
            "More than one process of a service shared its consumer group "
            "(`AWOOOP_BENCH_REPLICAS`). The partitions each process held after the runs, "
            "read from its own `/metrics`, and the tool calls the runs executed, counted in "
            "the journal every demo MCP server (one per gateway process) writes: a run "
            "executed by two members that both believed they owned it would count twice."
        ),
        "",
        *replica_table(f),
        "",
        *paragraph(executions_line(f)),
        "",
    ]


def durability_caveat(p: BenchParameters) -> str:
    if p.durable:
        return (
            "Postgres runs with `fsync=on` and `synchronous_commit=on`: every commit waits "
            "for its WAL to be flushed to this machine's disk, as on a durable server, so "
            "a commit costs what a flush of that disk costs."
        )
    return (
        "Postgres runs with `fsync=off` (`AWOOOP_BENCH_DURABLE=off`): a commit waits for "
        "its WAL to reach the operating system, not the disk, so every transaction costs "
        "less than on a durable server."
    )


def efficiency_bullet() -> str:
    stores = ", ".join(f"`{store}`" for store in STORES)
    return (
        "**Pipeline efficiency** (the report against the floor): the platform's runs/s "
        "over the runs/s of the least I/O the same runs need. Every record a run moves "
        "through the broker is produced and consumed once, at the raw produce + consume "
        "records/s above: the inbound record the bench produces, and every event the "
        f"services append to their event stores (the `events` table of schemas {stores}, "
        "counted over the admin connection just before the first produce and just after "
        "the last completion; the outbox relay publishes each row once); a record read by "
        "two services counts once. The read-model rows the runs wrote (`runs` + "
        "`timeline`) are copied once, at the raw `COPY` rows/s. The floor's seconds per "
        "run are records per run ÷ produce + consume records/s + rows per run ÷ `COPY` "
        "rows/s; the floor runs/s is their inverse. An efficiency of 1 would be a "
        "platform that did nothing but that I/O, in the raw baselines' large batches, "
        "broker and Postgres one after the other."
    )


def performance_doc(f: Figures) -> str:
    p = f.parameters
    poll = f"{p.poll_interval * 1000:.0f} ms"
    return "\n".join(
        [
            "# Performance",
            "",
            *paragraph(
                "`make bench` measures the platform end to end and rewrites this page. "
                "It asserts no target: figures are compared with the targets, and with "
                "earlier commits measured back to back, in the sections written after a "
                "run. The benchmark never fails on time, only when a run does not "
                "complete, the read model misses rows, or the read models rebuilt from "
                "the log differ from the live ones."
            ),
            "",
            "## What is measured",
            "",
            *bullets(
                "**The platform**: the embedded broker, Postgres and Redis, the five services "
                "and the query API, each its own process, started fresh on a private stack "
                "(`tests/support/platform_procs.py`) with `AWOOOP_LOG_LEVEL=warning`.",
                f"**The load**: {p.runs:,} skeleton runs of project `{p.project}`, one "
                "Telegram user per run (so no run is a double text), after "
                f"{p.warmup} warm-up runs of the same project by other people, left out of "
                "every timing and CPU figure (they wait for the consumer groups to settle and "
                "for the gateway's MCP session of the project: sessions are per tenant); the "
                "raw `COPY` baseline copies their rows too. The bench produces each inbound "
                "record itself with "
                f"aiokafka (`telegram_record`), keeping at most {p.concurrency} runs in "
                "flight: a run is in flight from its produce until the read model shows it "
                "`completed`, and a freed slot is refilled at once. A run is the demo "
                "agent's script: `run.started`, a tool call through the gateway to the "
                "stdio MCP demo server, the result, and `run.completed` (shadow mode: no "
                "outbound message).",
                f"**Completion** is read from the read model: the bench polls `projector.runs` "
                f"every {poll} over the admin connection and notes when each run's marker "
                "text (its `trigger_text`) first shows `completed`. Produce → `completed` "
                "runs from the produce call to that poll; runs/s counts the runs over the "
                "time from the first produce to the last run seen completed.",
                "**Half load**: after the baselines, half as many runs again (other people, "
                "marker `half-load run …`), produced open loop at half the runs/s just "
                "measured, however many are in flight: produce → `completed` at that rate is "
                "the latency of a platform with headroom (target: p99 ≤ 150 ms).",
                "**Where the time goes**: the same runs, split at the `occurred_at` that "
                "ingress, the runtime and the gateway stamped on each timeline event; the "
                "half-load runs split the same way beside them. The part of each hop before "
                "the broker is read back from the broker after the runs: from each event's "
                "`occurred_at` to its record's timestamp, which aiokafka stamps as the "
                "service's relay adds the record to its batch.",
                "**CPU seconds** per process from `/proc/<pid>/stat` (`utime + stime`, live "
                "children included, and exited children that were waited for), read just "
                "before the first produce and just after the last completion: every service "
                "(the gateway with its MCP server child), the API, the broker, Redis, and "
                "Postgres: the postmaster with every backend, split by the backend's "
                "`application_name` (each service pool is `awooop-<service>`).",
                "**Writes to and from the broker** over the same span: the TCP data segments "
                "(`data_segs_out`) of every established connection to the broker's port, read "
                "from the kernel with `ss -tinp` at the span's start and end, by the process "
                "that owns each end (`tests/bench/broker_writes.py`). Under load the broker's "
                "CPU follows how often the consumers fetch and the relays produce, and a count "
                "does not swing with the host's speed as runs/s does.",
                "**Kafka requests** over the same span, by type and by the service that sent "
                "them: each Python service starts with `tests/bench/kafka_request_hook` first "
                "on its `PYTHONPATH`, whose `sitecustomize` counts every request aiokafka's "
                "connection sends and writes the counts when the bench sends `SIGUSR2`, at "
                "the span's start and end (`tests/bench/kafka_requests.py`; "
                "`AWOOOP_BENCH_KAFKA_REQUESTS=off` leaves it out). Beside it, the broker's CPU "
                "over the span per request it answered.",
                "**Baselines**, in the same run on the same broker and Postgres, after the "
                "runs while the platform idles: the very inbound records produced to a "
                "scratch 12-partition topic as the relay sends them (per-partition "
                "`send_batch`, acks=all) and read back by one group member (`getmany` + "
                "commit, 10 ms fetch wait); the very read-model rows (`runs`, `timeline`) "
                "copied with asyncpg `copy_records_to_table` into plain tables of a scratch "
                "schema with the same columns and indexes (no RLS, no merge); and one "
                "record at a time to a consumer idling in a fetch, with the services' fetch "
                "wait and a short one.",
                "**The read-model rebuild**, last, on the same platform once the live "
                "projector has stored offsets at every high watermark: `awooop projector "
                "rebuild`'s engine (`Rebuild(...).run(drop_old=True)`) in the bench's "
                "process, which reads the projector's topics from offset 0 (the warm-up and "
                "the measured runs), folds them with the live projector's processor into a "
                "fresh schema, builds its indexes, catches up and swaps it in. Its time is "
                "the rebuild's own clock, from the log reader's start to the swap and the "
                "dropped old schema (creating and migrating the fresh schema come before it "
                "and are shown apart). *Rows written* are every row of every read-model "
                "table (`READ_MODEL_TABLES`) of `projector` after the swap, all projects; "
                "*rebuild rows/s* is those rows over that time and *events/s* the events "
                "folded over the same time. Those very rows are then copied raw, as in the "
                "baseline above, into `LIKE … INCLUDING ALL` tables of a scratch schema "
                f"(median of {COPY_ROUNDS} rounds). The **ratio** is rebuild rows/s ÷ "
                "`COPY` rows/s of the same rows, so it equals the `COPY` time over the "
                f"rebuild time; the target is at least {REBUILD_TARGET}, the aim "
                f"{REBUILD_AIM}. The digests of every table and project "
                "(`schema_checksums`) before and after the rebuild must be equal: that, "
                "not the time, is checked.",
                "**The gate decision per tool call** (`tests/bench/gate_evaluation.py`), in "
                "the bench's process with no database and no MCP call: from a decoded "
                "`run.tool_call_requested` through `requested_call`, gates 1 to 3 and the "
                "kill switch (`first_gates`, against an in-memory listing of the pins the demo "
                "server lists), "
                "the rate limit (an in-process `RateLimiter`, one `take` per call), gate 5's "
                "action hash, to the outcome event built and encoded (`approval_required` or "
                "`blocked`; an admitted call has none), each call timed alone with "
                "`perf_counter_ns`. The contracts are the demo's (an agent granted "
                "`status__demo` read, `restart_service__demo` write and `wipe_volume__demo` "
                "admin, and an `active` policy with a rate limit on `status__demo`) in each "
                f"of {f.gates.projects} projects. The calls are a fixed mix: mostly admitted "
                "reads, writes and admin calls held for an approval, and refusals at gates 1, "
                "2 and 4 (arguments), the kill switch and the rate limit (one noisy project "
                "has a lower one); the limiter's clock moves "
                f"{ARRIVAL_MS} ms a call, as if the calls arrived at that pace, so that the "
                f"buckets refill. {WARMUP} calls go first, untimed (each revision's schema "
                "validator compiles on its first call). The objects that exist before the "
                "calls (the bench's, the prebuilt requests) are frozen out of the garbage "
                "collector (`gc.freeze`), whose full collections would otherwise scan them "
                "again and again; the collections the calls cause are timed with them. "
                f"The target: p99 under "
                f"{GATE_P99_TARGET_MS} ms.",
                "**The gateway's own time per call** (`tests/bench/gateway_overhead.py`), "
                "after the runs, in the bench's process on the platform's Postgres (schema "
                "`mcp_gateway`, over the admin connection) and Redis, for a project of its "
                "own that the live gateway never hears of (nothing is produced to the broker). "
                f"Batches of {BATCH} decoded requests (admitted reads of `status__demo`) go "
                "through the gateway's own code: `GatewayProcessor.process` (inbox, gates, "
                "one `take` of the rate limits, the decisions `INSERT`), then in groups of "
                f"{GROUP} (the executor's default concurrency): `call_transactions.claim` of "
                "the first group, per call the admitting revision, the pin check against "
                "`current_listing` and `shape_answer` of an answer the demo server gave once "
                "before (the MCP call itself is left out, the answer's handling is not), and "
                "`call_transactions.record` (the outcome events into the event store and "
                "outbox, and the next group claimed in the same transaction, as a busy "
                "executor does). Each batch runs in one transaction that is rolled back, because "
                "the live relay publishes whatever the gateway's event store commits: every "
                "statement runs, the batch's `BEGIN` and rollback are not timed, and the "
                "executor's transactions are savepoints of it. The own time per call is "
                f"the time of every part over the calls of the timed batches ({WARMUP_BATCHES} "
                "warm-up batches first). Beside it, in the same run, one MCP SDK `Client` "
                "over stdio to the demo server, started as the gateway starts it, times "
                '`call_tool("status", {"service": "checkout"})` after a warm-up; '
                "the share is the own time per call over that call's median, the target "
                f"under {OVERHEAD_TARGET:.0%}.",
                "**Approved runs** (`tests/bench/approved_runs.py`), after the gateway's "
                "figures and before the rebuild: a tenant of its own (`bench-ops`, the "
                "`ops` tenant's agent, restart tool and `suggest` policy, one approval "
                f"needed) gets {APPROVED_RUNS:,} messages, at most {APPROVED_CONCURRENCY} "
                "runs in flight. Each run asks for a restart (a write), gate 5 holds it, the "
                "approval service makes the request and the runtime posts it to the chat; "
                "an automatic approver polls the `approvals` read model every "
                f"{APPROVAL_POLL * 1000:.0f} ms and approves each pending request once over "
                "HTTP as an approver of the policy; the token goes through the runtime to "
                "the gateway, which runs the restart; the run completes. Timed like the "
                "skeleton runs, from the produce to `completed` in the read model (so the "
                "approver's poll and the read model's lag are in the time, as a person's "
                "reaction would be).",
                efficiency_bullet(),
            ),
            "",
            "## Machine and parameters",
            "",
            *parameter_lines(f),
            "",
            "## Figures of one run",
            "",
            *all_tables(f),
            "",
            *replicas_section(f),
            "## Reading the figures",
            "",
            *reading(f),
            "",
            "## Caveats",
            "",
            *bullets(
                "**Embedded pieces.** The broker is Tansu with memory storage: nothing "
                "reaches a disk, so produce and fetch cost less than on a real Kafka "
                "cluster. " + durability_caveat(p),
                "**One shared machine.** The bench client, the broker, Postgres, Redis and "
                "six Python processes share the cores above with whatever else runs there "
                "(the last CPU row, from `/proc/stat`); `cores busy` is CPU seconds over "
                "wall seconds. Figures of two runs differ by a fifth or more when other "
                "work competes for the cores.",
                "**Client-side latencies.** Produce → `completed` starts at the bench's "
                "produce call (before the broker acknowledged it) and ends at the poll that "
                f"first saw the row: it includes up to one poll interval ({poll}) and the "
                "query. The split compares the bench's wall clock with the services' "
                "clocks, all on this one host.",
                "**Backends that exited** during the span (autovacuum workers, closed pool "
                "connections) are in Postgres's total through the postmaster's `cutime`, "
                "but in no service's line: they appear with the postmaster's own time. The "
                "bench's own connections (poller, meter) are backends too: their CPU is "
                "taken out of Postgres's line and shown below the platform's total.",
                "**The baselines are floors, not alternatives.** They move each record "
                "once, in large batches, with no decoding, event store, outbox, inbox or "
                "merge. A skeleton run moves one inbound record and six envelopes through "
                "the broker, several of them read by more than one service, and commits a "
                "transaction at every hop. The ratios say how far the platform is from the "
                "raw pieces, not what it should reach.",
                f"**Small samples.** {p.runs:,} records take milliseconds in the raw "
                "baselines, so those figures move by tens of percent between runs (the "
                f"median of {p.rounds} rounds is shown); so do one run's latency "
                "percentiles.",
                "**One rebuild of a short log.** The rebuild runs once, over this run's "
                "log only, in the bench's own process rather than a fresh `awooop` "
                "process, and the `COPY` of its rows is over in milliseconds: both move "
                "from run to run, and their ratio with them.",
                "**The gateway's figures are the bench process's.** Both gateway "
                "measurements run in the bench's process, beside what the runs left in it, "
                "not in the gateway's service process. The own time includes the round "
                "trips to Postgres and Redis but savepoints stand in for the executor's "
                "commits, and every claim and record takes a full group, the most the "
                "executor's recorder can group; a record of fewer calls costs more per call.",
            ),
            "",
            "## Running it",
            "",
            "```",
            "make bench",
            "AWOOOP_BENCH_RUNS=200 AWOOOP_BENCH_CONCURRENCY=16 make bench",
            "AWOOOP_BENCH_DURABLE=off AWOOOP_BENCH_REPLICAS=runtime=2,mcp_gateway=2 make bench",
            "AWOOOP_BENCH_PROFILE=docs/performance make bench",
            "```",
            "",
            *paragraph(
                "`AWOOOP_BENCH_DURABLE=off` starts the embedded Postgres with `fsync=off` "
                "(the default, `on`, flushes every commit with `fsync=on` and "
                "`synchronous_commit=on`). `AWOOOP_BENCH_REPLICAS=<service>=<count>,…` "
                "runs that many processes of each service named, the first included, and "
                "checks that every run executed once. `AWOOOP_BENCH_PROFILE=<folder>` writes "
                "a py-spy flame graph `<process>.svg` of every Python service and "
                "`statements.md` from `pg_stat_statements` over the measured span into the "
                "folder (the committed ones are in `docs/performance/`) and marks the page's "
                "figures as not comparable."
            ),
            "",
            *paragraph(
                "`AWOOOP_BENCH_REPORT=<file>` writes the page elsewhere (for trial runs). "
                "`make test` never runs the benchmark: `tests/bench` is in pytest's "
                "`norecursedirs`."
            ),
            "",
        ]
    )

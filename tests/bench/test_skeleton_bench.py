"""`make bench`: N skeleton runs from produce to `completed` in the read model, with the
CPU of every process, the raw Kafka and `COPY` baselines of the same run, and the
pipeline efficiency: the runs/s against the floor of the same runs' I/O at those raw
rates (`efficiency.py`).

Settings: `AWOOOP_BENCH_RUNS` (default 1,000), `AWOOOP_BENCH_CONCURRENCY`
(default 64), `AWOOOP_BENCH_WARMUP` (runs of another project pushed through
first and left out of every figure, default 16), `AWOOOP_BENCH_REPORT`
(default `docs/performance.md`), `AWOOOP_BENCH_DURABLE` (`on`, the default: the
embedded Postgres flushes every commit; `off`: `fsync=off`), `AWOOOP_BENCH_REPLICAS`
(more processes of a service, e.g. `runtime=2,mcp_gateway=2`: each service's count,
the first included; every run is then counted where it executes, in the demo MCP
server's journal), `AWOOOP_BENCH_PROFILE` (a folder: flame graphs of every Python
process and Postgres's statements per run over the measured span, see `profiles.py`),
`AWOOOP_BENCH_KAFKA_REQUESTS` (`on`, the default: every service counts the Kafka
requests it sends, see `kafka_requests.py`; `off`).

After the runs and the baselines, the gateway's decision per tool call is timed in
process, and its own time per call beside a direct MCP SDK call (its batches are
rolled back, so nothing of it reaches the broker); then writes that wait for an
approval run, each approved by an automatic approver (`approved_runs`). Then the read
models are rebuilt from the log on the same platform (`awooop projector rebuild`'s
engine) and the rows it wrote are copied raw, for the rebuild's rows/s against `COPY`'s.

Nothing is asserted on time; the test fails only when a run does not
complete, the read model misses rows, or the rebuilt read models differ from
the live ones before the rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import asyncpg
import pytest
from approved_runs import BOT_TOKEN_ENV, measure_approved_runs, onboard_approved_tenant
from bridge_load import measure_bridge
from broker_writes import BrokerWriteCounter
from copy_baseline import raw_copy
from efficiency import AppendedEvents
from fetch_wakeup import probe_waits
from gate_evaluation import measure_gates
from gateway_overhead import measure_gateway_overhead
from kafka_baseline import raw_kafka
from kafka_requests import BENCH, KafkaRequestCounter, count_here, hook_environment
from performance_doc import performance_doc
from platform_cpu import PlatformCpu
from profiles import Profiles
from read_model_rebuild import measure_rebuild
from replicas import Replicas, parse_replicas
from report import BROKER, BenchParameters, Figures, stdout_report
from skeleton_load import SkeletonLoad
from timeline_gaps import relay_lags, span_of, timeline_gaps

from awooop.infra.embedded.postgres import remove_cluster
from awooop.infra.settings import Settings
from support.platform_procs import RunningPlatform, own_platform

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("AWOOOP_BENCH_RUNS", "1000"))
CONCURRENCY = int(os.environ.get("AWOOOP_BENCH_CONCURRENCY", "64"))
WARMUP = int(os.environ.get("AWOOOP_BENCH_WARMUP", "16"))
REPORT = Path(os.environ.get("AWOOOP_BENCH_REPORT") or ROOT / "docs" / "performance.md")
PROJECT = "bench"
BOT = "7000"
WARMUP_FIRST = 10_000_000
"""The warm-up's update ids and users start here, apart from the measured runs'."""
HALF_FIRST = 20_000_000
"""The half-load runs' update ids and users start here."""
HALF_RUNS = max(100, RUNS // 2)
POLL_INTERVAL = 0.02
ROUNDS = 5
DURABLE = os.environ.get("AWOOOP_BENCH_DURABLE", "on").strip().lower() not in ("off", "0", "no")
REPLICAS = parse_replicas(os.environ.get("AWOOOP_BENCH_REPLICAS", ""))
PROFILE = os.environ.get("AWOOOP_BENCH_PROFILE") or None
PYTHON_PROCESSES = ("ingress", "runtime", "mcp_gateway", "projector", "approval")


def _roots(running: RunningPlatform) -> tuple[dict[str, int], int]:
    pieces = running.stack.stack.recorded()
    roots = {name: process.pid for name, process in running.platform.processes.items()}
    roots[BROKER] = pieces["broker"].pid
    roots["redis"] = pieces["redis"].pid
    return roots, pieces["postgres"].pid


async def _row_counts(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        # The measured runs only: the warm-up's runs share the project.
        measured = "project_id = $1 AND trigger_text LIKE 'bench run %'"
        runs = await conn.fetchval(f"SELECT count(*) FROM projector.runs WHERE {measured}", PROJECT)
        timeline = await conn.fetchval(
            "SELECT count(*) FROM projector.timeline WHERE project_id = $1 AND run_id IN "
            f"(SELECT run_id FROM projector.runs WHERE {measured})",
            PROJECT,
        )
    finally:
        await conn.close()
    return int(runs), int(timeline)


async def _measure(running: RunningPlatform, replicas: Replicas, counts: Path) -> Figures:
    database_url = running.env["AWOOOP_DATABASE_URL"]
    kafka = Settings.from_env(running.env).kafka
    roots, postmaster = _roots(running)
    services = {
        name: pid
        for name, pid in roots.items()
        if name.split("-")[0] in PYTHON_PROCESSES or name.rsplit("-", 1)[0] in PYTHON_PROCESSES
    }
    profiles = Profiles(Path(PROFILE), services, database_url) if PROFILE else None
    if WARMUP:
        # Every consumer holds its partitions and the gateway the project's MCP session
        # (sessions are per tenant) once one run went all the way through; those
        # one-off costs stay out of the figures. Same project, other people.
        warmup = SkeletonLoad(
            kafka,
            database_url,
            project=PROJECT,
            bot=BOT,
            label="warm-up",
            first=WARMUP_FIRST,
            runs=WARMUP,
            concurrency=WARMUP,
        )
        await warmup.drive(running.platform.check_alive)
    load = SkeletonLoad(
        kafka,
        database_url,
        project=PROJECT,
        bot=BOT,
        runs=RUNS,
        concurrency=CONCURRENCY,
        poll_interval=POLL_INTERVAL,
    )
    # The events counter's connection stays open across the span: a bench backend.
    broker = running.stack.stack.recorded()["broker"]
    writes = BrokerWriteCounter(roots, broker.pid, broker.port)
    count_here(counts)
    requests = KafkaRequestCounter({**services, BENCH: os.getpid()}, counts)
    async with (
        PlatformCpu(roots, postmaster, database_url) as meter,
        AppendedEvents(database_url) as events,
    ):

        async def started() -> None:
            if profiles is not None:
                await profiles.start()
            await events.start()
            writes.start()
            requests.start()
            await meter.start()

        async def stopped() -> None:
            await meter.stop()
            requests.stop()
            writes.stop()
            await events.stop()
            if profiles is not None:
                await profiles.stop(RUNS)

        result = await load.drive(running.platform.check_alive, started, stopped)
    assert meter.figures is not None
    runs_rows, timeline_rows = await _row_counts(database_url)
    gaps = await timeline_gaps(database_url, PROJECT, result.runs)
    kafka_floor = await raw_kafka(kafka, result.records, rounds=ROUNDS)
    wakeup = await probe_waits(kafka)
    copy_baseline = await raw_copy(
        database_url, PROJECT, rounds=ROUNDS, tables=("runs", "timeline")
    )
    # Half the peak just measured, open loop: the latency a platform with headroom gives.
    half = SkeletonLoad(
        kafka,
        database_url,
        project=PROJECT,
        bot=BOT,
        label="half-load",
        first=HALF_FIRST,
        runs=HALF_RUNS,
        concurrency=RUNS,
        poll_interval=POLL_INTERVAL,
        rate=len(result.runs) / result.elapsed / 2,
    )
    half_load = await half.drive(running.platform.check_alive)
    half_gaps = await timeline_gaps(database_url, PROJECT, half_load.runs)
    relayed, half_relayed = await relay_lags(
        kafka, PROJECT, [span_of(result.runs), span_of(half_load.runs)]
    )
    executions = replicas.executions()
    spread = replicas.partitions(running)
    gates = measure_gates()
    # Its batches roll back: nothing reaches the broker or the read models.
    overhead = await measure_gateway_overhead(
        database_url, Settings.from_env(running.env).redis_url
    )
    approved = await measure_approved_runs(running, kafka, database_url)
    # Last: the swap replaces the read models every figure above was read from.
    ring = Settings.from_env(running.env).contract_key_ring()
    rebuild = await measure_rebuild(kafka, database_url, ring)
    bridge = await measure_bridge(kafka)
    return Figures(
        parameters=BenchParameters(
            RUNS,
            CONCURRENCY,
            WARMUP,
            POLL_INTERVAL,
            ROUNDS,
            PROJECT,
            durable=DURABLE,
            replicas=replicas.counts,
            profiled=bool(PROFILE),
        ),
        executions=executions,
        half_load=half_load,
        half_gaps=half_gaps,
        relay_lags=relayed,
        half_relay_lags=half_relayed,
        spread=spread,
        appended=events.appended,
        load=result,
        cpu=meter.figures,
        writes=writes.figures,
        requests=requests.figures,
        kafka=kafka_floor,
        wakeup=wakeup,
        copy=copy_baseline,
        runs_rows=runs_rows,
        timeline_rows=timeline_rows,
        gaps=gaps,
        rebuild=rebuild,
        bridge=bridge,
        gates=gates,
        overhead=overhead,
        approved=approved,
    )


def _drop_cluster(data_dir: Path) -> None:
    # When `nobody` cannot reach the test's temp folder the embedded Postgres keeps its
    # data in a folder of its own under /var/tmp, which nothing else removes.
    remove_cluster(data_dir)
    if data_dir.parent.name.startswith("awooop-pgdata-"):
        with contextlib.suppress(OSError):
            data_dir.parent.rmdir()


@pytest.mark.timeout(3600)
def test_skeleton_runs_from_produce_to_completed_in_the_read_model(tmp_path: Path) -> None:
    clusters: list[Path] = []
    try:
        home = tmp_path / "bench"
        counts = tmp_path / "kafka-requests"
        replicas = Replicas(home, REPLICAS)
        with own_platform(
            home,
            stack_env={
                "AWOOOP_EMBEDDED_POSTGRES_DURABLE": "on" if DURABLE else "off",
                "AWOOOP_EMBEDDED_POSTGRES_STATEMENT_STATS": "on" if PROFILE else "off",
            },
            AWOOOP_LOG_LEVEL="warning",
            **hook_environment(counts),
            **BOT_TOKEN_ENV,
            **replicas.environment(),
        ) as running:
            clusters.append(Path(running.stack.stack.recorded()["postgres"].data_dir))
            replicas.start(running)
            running.onboard_like_demo(PROJECT, BOT)
            onboard_approved_tenant(running)
            figures = asyncio.run(_measure(running, replicas, counts))
    finally:
        for data_dir in clusters:  # Postgres is stopped by now
            _drop_cluster(data_dir)
    failed = figures.load.failed
    assert not failed, f"{len(failed)} runs ended {sorted({r.state for r in failed})}"
    assert len(figures.load.runs) == RUNS
    assert figures.half_load is not None
    assert not figures.half_load.failed
    assert len(figures.half_load.runs) == HALF_RUNS
    assert figures.runs_rows == RUNS
    approved = figures.approved
    assert len(approved.latencies) == len(approved.load.runs), "an approved run did not complete"
    assert figures.timeline_rows >= 6 * RUNS
    if figures.executions is not None:
        runs = RUNS + WARMUP + HALF_RUNS
        assert figures.executions == runs, (
            f"the MCP servers served {figures.executions} status calls for {runs} runs"
        )
    assert not figures.rebuild.differences, "rebuilt read models differ from the live ones: " + (
        "; ".join(figures.rebuild.differences)
    )
    print(stdout_report(figures))
    REPORT.write_text(performance_doc(figures))
    print(f"written to {REPORT}")

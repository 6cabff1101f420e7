"""The gateway's own time per tool call, MCP call excluded, beside a direct MCP SDK call to
the same server measured in the same run.

In this process, on the bench platform's Postgres (schema `mcp_gateway`, as the service's
pool sets it) and Redis, for a project of its own that the live gateway never hears of:
nothing is produced to Kafka. Each batch of `BATCH` decoded `run.tool_call_requested`
(admitted reads of `status__demo`) goes through, timed part by part:

- **decide**: `GatewayProcessor.process`, the consumer's call: inbox claim, undecided
  calls, kill switches, gates 1 to 3 against the live listing, one rate-limit `take`,
  gate 5, one `INSERT` of the decisions;
- **claim**: `call_transactions.claim` of the first group (the executor's concurrency);
- **answer**: per call, as `ToolCallExecutor._call` does around the MCP call: the
  admitting revision, `current_listing` and the pin compare, and `shape_answer` of the
  answer the server gave to one real call before the batches;
- **record**: `call_transactions.record` of each group: `finish`, the
  `gateway.tool_call_succeeded` events appended to the event store and outbox, and the
  claim of the next group in the same transaction, as a busy executor does.

Every batch runs in one transaction that is rolled back: the live gateway's relay
publishes whatever the event store commits, and the rebuild later checks the read
models. So every statement runs, but nothing commits: the batch's `BEGIN` and its
rollback are not timed, and the executor's transactions are savepoints of it
(`SAVEPOINT` and `RELEASE` in place of `BEGIN` and `COMMIT`). Claims and records take
whole groups at once, the most the executor's recorder could group.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from mcp import Client

from awooop.contracts.families.tool import StdioTransport, Tool
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.headers import make_traceparent, record_headers
from awooop.contracts.registries.errors import E_MCP_CALL_FAILED
from awooop.contracts.registries.service_names import MCP_GATEWAY
from awooop.contracts.registries.topics import Topics
from awooop.infra.contracts.active import ContractView
from awooop.infra.contracts.reader import ContractSource
from awooop.infra.kafka.records import DecodedRecord, RawRecord
from awooop.infra.logging import bind_context
from awooop.infra.postgres.pools import create_pool
from awooop.infra.processor import decode_envelope
from awooop.infra.redis import create_redis
from awooop.mcp_gateway.adapters import call_transactions
from awooop.mcp_gateway.adapters.call_transactions import FinishedCall
from awooop.mcp_gateway.adapters.executor_connection import ExecutorConnection
from awooop.mcp_gateway.adapters.mcp_sessions import McpSessionPool
from awooop.mcp_gateway.adapters.rate_limits import BucketRequest, RateLimiter, bucket_key
from awooop.mcp_gateway.adapters.stdio_transport import server_environment, stdio_parameters
from awooop.mcp_gateway.adapters.tool_calls import ClaimedCall
from awooop.mcp_gateway.app import utc_now
from awooop.mcp_gateway.domain.results import ToolAnswer, shape_answer
from awooop.mcp_gateway.executor import pin_refusal
from awooop.mcp_gateway.processor import GatewayProcessor
from support.contracts import agent_body, deployed_tool, granting, policy_body, view_of
from support.gateway import request

OVERHEAD_TARGET = 0.05
"""The gateway's own time per call ÷ a direct SDK call's median."""
PROJECT = "bench-overhead"
TOOL = "status__demo"
ARGUMENTS = {"service": "checkout"}
BATCH = 64
GROUP = 8
"""Calls per claim and per record: the executor's default concurrency
(`AWOOOP_MCP_CONCURRENCY`)."""
DEADLINE = dt.timedelta(seconds=10)
"""Shorter than the runtime's step timeout (30 s for the demo agent): a claim takes the
earliest deadline first, so the bench's calls come before any the live gateway admitted
in the last 20 s. A claim that takes another's call anyway fails the measurement (and is
rolled back with the batch)."""
BATCHES = 30
WARMUP_BATCHES = 3
DIRECT_CALLS = 400
DIRECT_WARMUP = 40
LIMIT = {"per_minute": 100_000, "burst": 100_000}
"""A rate limit that is taken on every call and refuses none of the bench's."""
PARTS = ("decide", "claim", "answer", "record")
CODEC = EnvelopeCodec()


@dataclass(frozen=True, slots=True)
class OverheadFigures:
    calls: int
    """Calls timed (warm-up batches left out)."""
    seconds: dict[str, float]
    """Time spent in each of `PARTS`, over every timed call."""
    batch_ms: list[float]
    """Own time per call of each timed batch, ms."""
    direct_ms: list[float]
    """Direct `call_tool` round trips, ms."""
    limiter: str

    @property
    def own_ms(self) -> float:
        return sum(self.seconds.values()) / self.calls * 1000

    def part_ms(self, part: str) -> float:
        return self.seconds[part] / self.calls * 1000

    @property
    def direct_p50_ms(self) -> float:
        return statistics.median(self.direct_ms)

    @property
    def share(self) -> float:
        return self.own_ms / self.direct_p50_ms


class _PinnedConnection(ExecutorConnection):
    """The executor's connection, pinned to the batch transaction so the executor's
    statements see the batch's uncommitted calls; its transactions become savepoints."""

    def __init__(self, pool: asyncpg.Pool, conn: asyncpg.Connection, executor_id: str) -> None:
        super().__init__(pool, executor_id)
        self._pinned = conn

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._pinned


def _view() -> ContractView:
    grants = (("status__demo", "read"), ("restart_service__demo", "write"))
    documents = {
        "demo-agent": granting(agent_body(), *grants, ("wipe_volume__demo", "admin")),
        **{f"{t}__demo": deployed_tool(t) for t in ("status", "restart_service", "wipe_volume")},
        "policy": policy_body(
            "active",
            rate_limits=[{"tool": TOOL, **LIMIT}],
            approval_required_tools=["restart_service__demo"],
        ),
    }
    return view_of((PROJECT, documents))


def _decoded(view: ContractView, batch: int) -> list[DecodedRecord]:
    """A batch as the consumer hands it over: encoded records, decoded by the codec."""
    agent = view.refs()[(PROJECT, "demo-agent")]
    records = []
    for n in range(BATCH):
        run = f"run-{uuid.uuid4()}"
        envelope = request(
            PROJECT,
            run,
            f"{run}-call",
            tool=TOOL,
            arguments=dict(ARGUMENTS),
            execute_within=DEADLINE,
            revision=agent,
        )
        raw = RawRecord(
            topic=Topics.RUN_EVENTS.name,
            partition=0,
            offset=batch * BATCH + n,
            key=run.encode(),
            value=CODEC.encode(envelope),
            headers=tuple(record_headers(envelope, make_traceparent(envelope.trace_id))),
            timestamp=int(time.time() * 1000),
        )
        records.append(decode_envelope(CODEC, raw))
    return records


@dataclass(frozen=True, slots=True)
class _Gateway:
    view: ContractView
    processor: GatewayProcessor
    sessions: McpSessionPool
    answer: ToolAnswer
    latency_ms: float


async def _answer(gateway: _Gateway, claimed: ClaimedCall) -> FinishedCall:
    """`ToolCallExecutor._call` without its MCP call: the answer is the recorded one."""
    call = claimed.call
    with bind_context(project_id=call.project_id, run_id=call.run_id, trace_id=call.trace_id):
        admitted = gateway.view.at(call.project_id, claimed.revision, Tool)
        assert admitted is not None
        tool = admitted.document
        listing = await gateway.sessions.current_listing(call.project_id, tool)
        changed = pin_refusal(call.tool, tool, listing, claimed.revision)
        if changed is not None:
            raise RuntimeError(f"the demo server's pin moved: {changed.reason}")
        shaped = shape_answer(gateway.answer, E_MCP_CALL_FAILED.code)
        return FinishedCall(claimed, shaped, gateway.latency_ms)


async def _batch(
    gateway: _Gateway, pool: asyncpg.Pool, conn: asyncpg.Connection, records: list[DecodedRecord]
) -> dict[str, float]:
    """One batch through the gateway, rolled back; seconds per part."""
    mine = {item.body.payload.call_id for item in records}
    spent = dict.fromkeys(PARTS, 0.0)
    db = _PinnedConnection(pool, conn, f"bench-overhead-{os.getpid()}")
    transaction = conn.transaction()
    await transaction.start()
    try:
        started = time.perf_counter()
        await gateway.processor.process(conn, records)
        spent["decide"] = time.perf_counter() - started
        # As the executor does under load: a claim of its own first, then each group's
        # answers recorded in the transaction that claims the next group.
        started = time.perf_counter()
        claimed = await call_transactions.claim(db, lambda: GROUP)
        spent["claim"] += time.perf_counter() - started
        while mine:
            to_run, expired = claimed.to_run, claimed.expired
            started = time.perf_counter()
            finished = [await _answer(gateway, c) for c in to_run]
            answered = time.perf_counter()
            ids = {c.call.call_id for c in to_run}
            left = len(mine - ids)
            recorded, claimed = await call_transactions.record(
                db, finished, lambda left=left: min(GROUP, left)
            )
            spent["answer"] += answered - started
            spent["record"] += time.perf_counter() - answered
            if expired or not to_run or not ids <= mine or recorded != len(to_run):
                raise RuntimeError(
                    f"claimed {len(to_run)} calls ({len(ids - mine)} not the bench's) and "
                    f"{expired} expired, recorded {recorded}: every call of the batch should "
                    "be admitted, claimed and answered once (rolled back)"
                )
            mine -= ids
    finally:
        await transaction.rollback()
    return spent


async def _direct(tool: Tool, calls: int) -> list[float]:
    """`call_tool` round trips on one SDK client of the server, started as the gateway
    starts it, after `DIRECT_WARMUP` calls."""
    assert isinstance(tool.transport, StdioTransport)
    parameters = stdio_parameters(tool.transport, server_environment({}, os.environ))
    took = []
    async with Client(parameters) as client:
        for n in range(DIRECT_WARMUP + calls):
            started = time.perf_counter()
            await client.call_tool(tool.tool, dict(ARGUMENTS))
            if n >= DIRECT_WARMUP:
                took.append((time.perf_counter() - started) * 1000)
    return took


async def measure_gateway_overhead(
    database_url: str,
    redis_url: str | None = None,
    *,
    batches: int = BATCHES,
    direct_calls: int = DIRECT_CALLS,
) -> OverheadFigures:
    """`batches` timed batches of `BATCH` calls (after `WARMUP_BATCHES`), then
    `direct_calls` direct SDK calls. `database_url` is the admin URL; with `redis_url`
    the rate limit is taken in Redis, as the live gateway does, else in process."""
    view = _view()
    tool = view.tool(PROJECT, TOOL)
    assert tool is not None
    redis = create_redis(redis_url) if redis_url else None
    limiter = RateLimiter(redis)
    sessions = McpSessionPool()
    pool = await create_pool(database_url, MCP_GATEWAY, max_size=1, name="awooop-bench-gateway")
    seconds = dict.fromkeys(PARTS, 0.0)
    batch_ms: list[float] = []
    try:
        started = time.perf_counter()
        answer = await sessions.call(PROJECT, tool.document, dict(ARGUMENTS))
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        processor = GatewayProcessor(
            contracts=ContractSource(view),
            listing=sessions.listing,
            limiter=limiter,
            wake_executor=lambda: None,
            clock=utc_now,
            service=MCP_GATEWAY,
        )
        gateway = _Gateway(view, processor, sessions, answer, latency_ms)
        async with pool.acquire() as conn:
            for n in range(WARMUP_BATCHES + batches):
                spent = await _batch(gateway, pool, conn, _decoded(view, n))
                if n < WARMUP_BATCHES:
                    continue
                batch_ms.append(sum(spent.values()) / BATCH * 1000)
                for part, value in spent.items():
                    seconds[part] += value
            left = await conn.execute("DELETE FROM tool_calls WHERE project_id = $1", PROJECT)
        if left != "DELETE 0":
            raise RuntimeError(f"rows of {PROJECT} outlived their rolled-back batches: {left}")
        direct = await _direct(tool.document, direct_calls)
    finally:
        await sessions.close()
        if redis is not None:
            asked = BucketRequest(PROJECT, "demo-agent", TOOL, **LIMIT)
            await redis.delete(bucket_key(asked))
        await limiter.close()
        await pool.close()
    return OverheadFigures(
        batches * BATCH, seconds, batch_ms, direct, "Redis" if redis else "in process"
    )

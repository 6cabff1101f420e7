"""Gate 4's rate limiter on a real Redis: the burst and the wait, one bucket per
(project, agent, tool), the buckets shared by every limiter on the same Redis, one round
trip per batch, and the in-process fallback through an outage and back.

Tests that stop or restart Redis, or read its server-wide command counts, start their
own embedded `redis-server`, never the stack's (tests/README conventions)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from awooop.infra.embedded.processes import PieceInfo, free_port
from awooop.infra.embedded.redis import start_redis, stop_redis
from awooop.infra.redis import create_redis
from awooop.mcp_gateway.adapters import rate_limits
from awooop.mcp_gateway.adapters.rate_limits import (
    BucketRequest,
    RateDecision,
    RateLimiter,
    bucket_key,
)
from support.infra import StackUrls, unique
from support.log_capture import captured

pytestmark = pytest.mark.integration

ALLOWED = RateDecision(allowed=True, retry_after=0.0)


def ask(
    project: str,
    tool: str = "status__demo",
    *,
    agent: str = "helper",
    per_minute: int = 60,
    burst: int = 3,
) -> BucketRequest:
    return BucketRequest(project, agent, tool, per_minute, burst)


@pytest.fixture
async def limiter(stack_urls: StackUrls) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter.from_url(stack_urls.redis)
    yield limiter
    await limiter.close()


class OwnRedis:
    """A `redis-server` of this test alone, which it may kill and start again on one port."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.info: PieceInfo = start_redis(home / "data", home, self.port)

    @property
    def url(self) -> str:
        return self.info.url

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.info.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.info.pid, 0)

    def start(self) -> None:
        self.info = start_redis(self.home / "data", self.home, self.port)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    try:
        yield server
    finally:
        stop_redis(server.info)


async def test_the_burst_is_allowed_then_refused_with_the_time_to_the_next_token(
    limiter: RateLimiter,
) -> None:
    project = unique("p")
    decisions = await limiter.take([ask(project)] * 4)
    assert decisions[:3] == [ALLOWED] * 3
    assert not decisions[3].allowed
    # One token a second; the batch itself took a few milliseconds of Redis's clock at most.
    assert 0.9 < decisions[3].retry_after <= 1.0
    assert decisions[3].retry_after == round(decisions[3].retry_after, 3)
    [again] = await limiter.take([ask(project)])
    assert not again.allowed
    assert 0 < again.retry_after <= decisions[3].retry_after


async def test_the_bucket_refills_on_redis_time(limiter: RateLimiter) -> None:
    fast = ask(unique("p"), per_minute=6_000, burst=1)  # a token every 10 ms
    first, second = await limiter.take([fast, fast])
    assert first == ALLOWED
    assert not second.allowed
    assert 0 < second.retry_after <= 0.01
    await asyncio.sleep(second.retry_after + 0.005)
    assert await limiter.take([fast]) == [ALLOWED]


async def test_each_project_agent_and_tool_has_its_own_bucket(limiter: RateLimiter) -> None:
    project = unique("p")
    await limiter.take([ask(project, burst=1)])
    others = [
        ask(project, "other__demo", burst=1),
        ask(project, agent="other", burst=1),
        ask(unique("p"), burst=1),
    ]
    decisions = await limiter.take([ask(project, burst=1), *others])
    assert not decisions[0].allowed
    assert decisions[1:] == [ALLOWED] * 3


async def test_a_bucket_named_twice_in_a_batch_is_taken_in_order(limiter: RateLimiter) -> None:
    project = unique("p")
    a, b = ask(project, "a__demo", burst=2), ask(project, "b__demo", burst=1)
    decisions = await limiter.take([a, b, a, b, a])
    assert [d.allowed for d in decisions] == [True, True, True, False, False]


async def test_two_gateways_on_one_redis_share_the_buckets(
    limiter: RateLimiter, stack_urls: StackUrls
) -> None:
    other = RateLimiter.from_url(stack_urls.redis)
    try:
        project = unique("p")
        assert await limiter.take([ask(project, burst=2)]) == [ALLOWED]
        assert await other.take([ask(project, burst=2)]) == [ALLOWED]
        [third] = await limiter.take([ask(project, burst=2)])
    finally:
        await other.close()
    assert not third.allowed


async def test_the_bucket_expires_a_little_after_a_full_refill(
    limiter: RateLimiter, stack_urls: StackUrls
) -> None:
    request = ask(unique("p"), per_minute=60, burst=3)
    await limiter.take([request])
    probe = aioredis.Redis.from_url(stack_urls.redis)
    try:
        ttl_ms = await probe.pttl(bucket_key(request))
    finally:
        await probe.aclose()
    assert 3_000 < ttl_ms <= 4_000  # 3 s to refill 3 tokens, plus the one-second margin


class CountingConnection(aioredis.Connection):
    """A connection that counts what it writes to the socket and the replies it reads."""

    writes = 0
    replies = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        CountingConnection.replies += 1
        return await super().read_response(*args, **kwargs)


async def _command_calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name: value["calls"] for name, value in stats.items()}


async def test_one_batch_is_one_round_trip(own_redis: OwnRedis) -> None:
    client = aioredis.Redis.from_url(
        own_redis.url, connection_class=CountingConnection, socket_timeout=0.5
    )
    limiter = RateLimiter(client)
    observer = aioredis.Redis.from_url(own_redis.url)
    batch = [ask(f"p{i % 5}", f"t{i % 4}__demo", burst=2) for i in range(40)]
    try:
        await limiter.take(batch[:1])  # connects and loads the script
        before = await _command_calls(observer)
        CountingConnection.writes = CountingConnection.replies = 0
        decisions = await limiter.take(batch)
        assert (CountingConnection.writes, CountingConnection.replies) == (1, 1)
        after = await _command_calls(observer)
        await limiter.take(batch)
        assert (CountingConnection.writes, CountingConnection.replies) == (2, 2)
        await limiter.take([])
        assert (CountingConnection.writes, CountingConnection.replies) == (2, 2)
    finally:
        await limiter.close()
        await observer.aclose()
    # Server side: one EVALSHA carried the 40 takes (each one HMGET inside the script).
    assert after["cmdstat_evalsha"] - before["cmdstat_evalsha"] == 1
    assert after["cmdstat_hmget"] - before["cmdstat_hmget"] == 40
    assert after.get("cmdstat_eval", 0) == before.get("cmdstat_eval", 0)
    # 20 buckets named twice each, burst 2; the warm-up took one token of the first.
    assert sum(d.allowed for d in decisions) == 40 - 1


async def test_a_flushed_script_cache_is_refilled_without_leaving_redis(
    own_redis: OwnRedis,
) -> None:
    limiter = RateLimiter.from_url(own_redis.url)
    admin = aioredis.Redis.from_url(own_redis.url)
    try:
        with captured(rate_limits) as lines:
            assert await limiter.take([ask("acme", burst=2)]) == [ALLOWED]
            await admin.script_flush()
            before = await _command_calls(admin)
            decisions = await limiter.take([ask("acme", burst=2)] * 2)
            after = await _command_calls(admin)
    finally:
        await limiter.close()
        await admin.aclose()
    # The bucket kept its state across the flush: the answer came from Redis, not a
    # fresh in-process bucket (which would allow both), and no outage was logged.
    assert [d.allowed for d in decisions] == [True, False]
    # One EVALSHA met NOSCRIPT, one EVAL answered and cached the script again.
    assert after["cmdstat_evalsha"] - before["cmdstat_evalsha"] == 1
    assert after["cmdstat_eval"] - before["cmdstat_eval"] == 1
    assert lines == []


async def test_a_dead_redis_is_answered_in_process_with_one_warning() -> None:
    limiter = RateLimiter.from_url(f"redis://127.0.0.1:{free_port()}/0", retry_interval=0.05)
    request = ask("acme", per_minute=60, burst=2)
    started = time.monotonic()
    try:
        with captured(rate_limits) as lines:
            first = await limiter.take([request] * 3)
            await asyncio.sleep(0.1)  # past the retry interval: Redis is tried again
            second = await limiter.take([request])
    finally:
        await limiter.close()
    assert time.monotonic() - started < 2.0
    assert first[:2] == [ALLOWED] * 2
    assert not first[2].allowed
    assert 0.9 < first[2].retry_after <= 1.0
    assert not second[0].allowed
    assert [(line["event"], line["log_level"]) for line in lines] == [
        ("rate_limit_fallback", "warning")
    ]
    assert lines[0]["error"] == "ConnectionError"


class SteppedClock:
    """The monotonic clock plus the jumps a test makes, to reach Redis's next try at once."""

    def __init__(self) -> None:
        self.jumped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.jumped


async def test_through_an_outage_the_limiter_keeps_limiting_and_returns_to_redis(
    own_redis: OwnRedis,
) -> None:
    clock = SteppedClock()
    limiter = RateLimiter(create_redis(own_redis.url), clock=clock, retry_interval=5.0)
    probe = aioredis.Redis.from_url(own_redis.url)
    # A token a minute: the clock's 5 s jumps refill a twelfth of one.
    during = ask("acme", "during__demo", per_minute=1, burst=2)
    after = ask("acme", "after__demo", per_minute=1, burst=2)
    try:
        with captured(rate_limits) as lines:
            assert await limiter.take([ask("acme", "before__demo")]) == [ALLOWED]
            own_redis.kill()
            outage = [(await limiter.take([during]))[0] for _ in range(3)]
            clock.jumped += 5.1
            outage += await limiter.take([during])  # Redis tried again: still down
            own_redis.start()
            in_process = await limiter.take([after])  # within 5 s of that try: not asked
            stored_meanwhile = await probe.exists(bucket_key(after))
            clock.jumped += 5.1
            back = await limiter.take([after, after, after])
            stored = await probe.hgetall(bucket_key(after))
    finally:
        await limiter.close()
        await probe.aclose()
    assert [d.allowed for d in outage] == [True, True, False, False]
    assert 50 < outage[3].retry_after <= 60
    assert in_process == [ALLOWED]
    assert stored_meanwhile == 0
    # Back on Redis: the restarted, empty Redis holds a bucket of its own for `after`.
    assert [d.allowed for d in back] == [True, True, False]
    assert stored[b"credits"] == b"0"
    events = [(line["event"], line["log_level"]) for line in lines]
    assert events == [("rate_limit_fallback", "warning"), ("rate_limit_redis_back", "info")]
    assert lines[0]["error"] in {"ConnectionError", "TimeoutError"}

"""Gate 4's token buckets without Redis: the arithmetic on an injected clock, and the
limiter's fallback, its one warning per outage and its retry schedule, against a
hand-written Redis that fails, heals, forgets its scripts or hangs."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from awooop.mcp_gateway.adapters import rate_limits
from awooop.mcp_gateway.adapters.rate_limits import RateLimiter
from awooop.mcp_gateway.domain.buckets import (
    Bucket,
    BucketRequest,
    InProcessBuckets,
    RateDecision,
    full_refill_ms,
    take_token,
)
from support.log_capture import captured

pytestmark = pytest.mark.unit

ALLOWED = RateDecision(allowed=True, retry_after=0.0)


def refused(seconds: float) -> RateDecision:
    return RateDecision(allowed=False, retry_after=seconds)


def ask(
    tool: str = "status__demo",
    *,
    per_minute: int = 60,
    burst: int = 2,
    project: str = "acme",
    agent: str = "helper",
) -> BucketRequest:
    return BucketRequest(project, agent, tool, per_minute, burst)


class Clock:
    """Seconds on a monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def at(buckets: InProcessBuckets, seconds: float, *requests: BucketRequest) -> list[RateDecision]:
    return buckets.take(requests, round(seconds * 1_000_000))


# The arithmetic


def test_a_bucket_starts_full_gives_its_burst_then_refuses_until_one_token_refills() -> None:
    buckets = InProcessBuckets()
    assert at(buckets, 0, *[ask(burst=3)] * 4) == [ALLOWED] * 3 + [refused(1.0)]


def test_the_bucket_refills_at_per_minute_and_the_wait_shrinks_with_time() -> None:
    buckets = InProcessBuckets()
    assert at(buckets, 0, ask(), ask()) == [ALLOWED, ALLOWED]
    assert at(buckets, 0.25, ask()) == [refused(0.75)]
    assert at(buckets, 0.999, ask()) == [refused(0.001)]
    assert at(buckets, 1.0, ask()) == [ALLOWED]
    assert at(buckets, 1.5, ask()) == [refused(0.5)]
    assert at(buckets, 3.0, ask(), ask(), ask()) == [ALLOWED, ALLOWED, refused(1.0)]


def test_a_long_idle_bucket_holds_no_more_than_its_burst() -> None:
    buckets = InProcessBuckets()
    at(buckets, 0, ask(), ask())
    assert at(buckets, 3600, *[ask()] * 3) == [ALLOWED, ALLOWED, refused(1.0)]


@pytest.mark.parametrize(
    ("per_minute", "retry_after"),
    [(7, 8.572), (60, 1.0), (120, 0.5), (6_000, 0.01), (90_000, 0.001), (100_000, 0.001)],
)
def test_retry_after_is_the_time_to_one_token_rounded_up_to_the_millisecond(
    per_minute: int, retry_after: float
) -> None:
    buckets = InProcessBuckets()
    request = ask(per_minute=per_minute, burst=1)
    assert at(buckets, 0, request, request) == [ALLOWED, refused(retry_after)]


def test_a_bucket_named_twice_in_one_batch_gives_two_tokens_in_order() -> None:
    buckets = InProcessBuckets()
    a, b = ask("a__demo", burst=2), ask("b__demo", burst=1)
    assert at(buckets, 0, a, b, a, b, a) == [ALLOWED, ALLOWED, ALLOWED, refused(1.0), refused(1.0)]


def test_each_project_agent_and_tool_has_its_own_bucket() -> None:
    buckets = InProcessBuckets()
    at(buckets, 0, ask(burst=1))
    others = [ask(burst=1, project="globex"), ask(burst=1, agent="other"), ask("b__x", burst=1)]
    assert at(buckets, 0, ask(burst=1), *others) == [refused(1.0), ALLOWED, ALLOWED, ALLOWED]


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket, wait = take_token(Bucket(credits=0, at=5_000_000), 4_000_000, 60, 1)
    assert (bucket, wait) == (Bucket(credits=0, at=5_000_000), 1000)


def test_a_lowered_burst_caps_a_bucket_that_held_more() -> None:
    buckets = InProcessBuckets()
    at(buckets, 0, ask(burst=5))
    assert at(buckets, 0, *[ask(burst=2)] * 3) == [ALLOWED, ALLOWED, refused(1.0)]


def test_once_the_buckets_double_the_full_ones_are_forgotten_and_the_recent_kept() -> None:
    buckets = InProcessBuckets()
    at(buckets, 0, *[ask(f"old{i}__demo", burst=1) for i in range(2_000)])
    assert full_refill_ms(60, 1) == 1000  # so at 2 s every one of them is full again
    assert at(buckets, 1.5, ask(burst=1)) == [ALLOWED]
    at(buckets, 2.0, *[ask(f"new{i}__demo", burst=1) for i in range(2_001)])
    assert len(buckets) == 2_002
    assert at(buckets, 2.0, ask(burst=1)) == [refused(0.5)]
    assert at(buckets, 2.0, ask("old7__demo", burst=1)) == [ALLOWED]


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_a_bucket_needs_a_positive_rate_and_burst(per_minute: int, burst: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BucketRequest("acme", "helper", "status__demo", per_minute, burst)


# The limiter's fallback


class FakeRedis:
    """Answers the take script with "allowed", or fails as told; counts each attempt."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.scripts_lost = False
        self.hang = False
        self.calls: list[str] = []

    async def evalsha(self, _sha: str, numkeys: int, *_keys_and_args: str) -> Any:
        self.calls.append("evalsha")
        if self.hang:
            await asyncio.sleep(3600)
        if self.failure is not None:
            raise self.failure
        if self.scripts_lost:
            raise NoScriptError("NOSCRIPT No matching script.")
        return [0] * numkeys

    async def eval(self, _script: str, numkeys: int, *_keys_and_args: str) -> Any:
        self.calls.append("eval")
        self.scripts_lost = False
        return [0] * numkeys


def limiter_on(fake: FakeRedis, clock: Clock, **options: float) -> RateLimiter:
    return RateLimiter(cast("aioredis.Redis", fake), clock=clock, **options)


async def test_without_redis_the_limiter_answers_in_process_and_says_so_once() -> None:
    clock = Clock()
    with captured(rate_limits) as lines:
        limiter = RateLimiter(None, clock=clock)
        assert await limiter.take([ask(burst=1)] * 2) == [ALLOWED, refused(1.0)]
        clock.now += 0.4
        assert await limiter.take([ask(burst=1)]) == [refused(0.6)]
    assert [line["event"] for line in lines] == ["rate_limit_fallback"]
    assert lines[0]["log_level"] == "warning"


async def test_an_empty_batch_costs_no_redis_call() -> None:
    fake = FakeRedis()
    assert await limiter_on(fake, Clock()).take([]) == []
    assert fake.calls == []


async def test_an_outage_is_one_warning_redis_is_retried_every_interval_and_its_return_noted() -> (
    None
):
    fake, clock = FakeRedis(), Clock()
    limiter = limiter_on(fake, clock, retry_interval=5.0)
    fake.failure = RedisConnectionError("Connection refused")
    with captured(rate_limits) as lines:
        assert await limiter.take([ask(burst=2)] * 3) == [ALLOWED, ALLOWED, refused(1.0)]
        for step in (1.0, 1.0, 1.0, 1.0):  # 4 s into the outage: Redis is not asked again
            clock.now += step
            await limiter.take([ask(burst=2)])
        assert fake.calls == ["evalsha"]
        clock.now += 1.0
        await limiter.take([ask(burst=2)])  # 5 s: asked again, still down, no new warning
        assert fake.calls == ["evalsha"] * 2
        fake.failure = None
        other = ask("other__demo", burst=1)
        clock.now += 4.75
        assert await limiter.take([other] * 2) == [ALLOWED, refused(1.0)]  # still in-process
        clock.now += 0.25
        assert await limiter.take([other] * 2) == [ALLOWED, ALLOWED]  # the fake Redis's answer
        await limiter.take([other])
    assert fake.calls == ["evalsha"] * 4
    events = [(line["event"], line["log_level"]) for line in lines]
    assert events == [("rate_limit_fallback", "warning"), ("rate_limit_redis_back", "info")]
    assert lines[0]["error"] == "ConnectionError"
    assert lines[1]["outage_seconds"] == 10.0


async def test_a_second_outage_is_warned_again() -> None:
    fake, clock = FakeRedis(), Clock()
    limiter = limiter_on(fake, clock, retry_interval=5.0)
    with captured(rate_limits) as lines:
        for failure in (OSError("unreachable"), None, TimeoutError(), None):
            fake.failure = failure
            await limiter.take([ask()])
            clock.now += 5.0
    assert [(line["event"], line.get("error")) for line in lines] == [
        ("rate_limit_fallback", "OSError"),
        ("rate_limit_redis_back", None),
        ("rate_limit_fallback", "TimeoutError"),
        ("rate_limit_redis_back", None),
    ]


async def test_a_lost_script_is_sent_again_in_full_within_the_same_batch() -> None:
    fake, clock = FakeRedis(), Clock()
    fake.scripts_lost = True
    limiter = limiter_on(fake, clock)
    with captured(rate_limits) as lines:
        assert await limiter.take([ask(burst=1)] * 2) == [ALLOWED, ALLOWED]  # Redis answered
        await limiter.take([ask()])
    assert fake.calls == ["evalsha", "eval", "evalsha"]
    assert lines == []


async def test_a_redis_that_hangs_is_given_up_on_within_the_timeout() -> None:
    fake, clock = FakeRedis(), Clock()
    fake.hang = True
    limiter = limiter_on(fake, clock, timeout=0.05)
    with captured(rate_limits) as lines:
        async with asyncio.timeout(5):
            assert await limiter.take([ask(burst=1)] * 2) == [ALLOWED, refused(1.0)]
    assert [(line["event"], line["error"]) for line in lines] == [
        ("rate_limit_fallback", "TimeoutError")
    ]


async def test_a_malformed_answer_is_treated_as_an_outage() -> None:
    fake, clock = FakeRedis(), Clock()

    async def short(_sha: str, _numkeys: int, *_rest: str) -> Any:
        return [0]

    fake.evalsha = short  # type: ignore[assignment]
    with captured(rate_limits) as lines:
        decisions = await limiter_on(fake, clock).take([ask(burst=1)] * 2)
    assert decisions == [ALLOWED, refused(1.0)]
    assert [line["error"] for line in lines] == ["RedisError"]

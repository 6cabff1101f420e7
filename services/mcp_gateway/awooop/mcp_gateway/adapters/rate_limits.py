"""Gate 4's rate limiter: the (project, agent, tool) token buckets in Redis, shared by
every gateway process, with in-process buckets while Redis is unset or down.

A consumed batch costs one round trip: one EVALSHA of `TAKE_SCRIPT`, every request's
bucket a key, taken in order on Redis's own clock (`TIME`), so gateways on different
hosts agree and a bucket named twice in a batch gives two tokens or refuses the second.
After a restart emptied the script cache, the batch that meets NOSCRIPT is sent once
more as EVAL, which caches the script again.

Redis never stops the gate (ARCHITECTURE §4): when a call fails (refused, timed out,
any error) the batch is answered by `InProcessBuckets`, the same arithmetic on the
monotonic clock, and so is every batch until Redis is tried again, `retry_interval`
seconds later. One warning line marks an outage and one line its end; while it lasts
the limits hold per process instead of per fleet.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from awooop.infra.logging import get_logger
from awooop.infra.redis import create_redis
from awooop.mcp_gateway.domain.buckets import (
    CREDITS_PER_TOKEN,
    BucketRequest,
    InProcessBuckets,
    RateDecision,
)

__all__ = ["KEY_PREFIX", "TAKE_SCRIPT", "BucketRequest", "RateDecision", "RateLimiter"]

log = get_logger(__name__)

KEY_PREFIX = "awooop:ratelimit"
RETRY_SECONDS = 5.0
"""While Redis is down, how long batches are answered in-process before it is tried again."""
REDIS_TIMEOUT = 1.0
"""Bound on one batch's Redis call, above the client's own 0.5 s socket timeouts."""
TTL_MARGIN_MS = 1_000

# The twin of `domain.buckets.take_token`, in Lua 5.1 (every number a double: the values
# stay below 2^53, so they are exact, and are written with %.0f, never as 1.7e+15).
# KEYS[i] is request i's bucket, ARGV[2i-1] and ARGV[2i] its per_minute and burst;
# a bucket is a hash {credits, at}, `at` in µs of Redis time. Returns one wait per
# request in ms, 0 when a token was taken.
TAKE_SCRIPT = f"""
local COST = {CREDITS_PER_TOKEN}
local function ceil_div(a, b)
  local q = math.floor(a / b)
  if q * b < a then q = q + 1 end
  return q
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local waits = {{}}
for i, key in ipairs(KEYS) do
  local per_minute = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i]) * COST
  local step = per_minute * 1000
  local state = redis.call('HMGET', key, 'credits', 'at')
  local credits, at = capacity, now
  if state[1] and state[2] then
    at = tonumber(state[2])
    credits = math.min(capacity, tonumber(state[1]) + math.max(0, now - at) * per_minute)
    at = math.max(at, now)
  end
  local wait = 0
  if credits >= COST then
    credits = credits - COST
  else
    wait = ceil_div(COST - credits, step)
  end
  redis.call('HSET', key, 'credits', string.format('%.0f', credits),
             'at', string.format('%.0f', at))
  redis.call('PEXPIRE', key, string.format('%.0f', ceil_div(capacity, step) + {TTL_MARGIN_MS}))
  waits[i] = wait
end
return waits
"""
_SCRIPT_SHA = hashlib.sha1(TAKE_SCRIPT.encode(), usedforsecurity=False).hexdigest()


def bucket_key(request: BucketRequest) -> str:
    """The Redis key of the request's bucket (ids hold no colon: their patterns forbid it)."""
    return f"{KEY_PREFIX}:{request.project_id}:{request.agent_id}:{request.tool}"


class RateLimiter:
    """Takes a batch's tokens in one Redis round trip, or in-process when Redis is unset
    or failing; `take` never raises for Redis trouble."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_interval: float = RETRY_SECONDS,
        timeout: float = REDIS_TIMEOUT,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._retry_interval = retry_interval
        self._timeout = timeout
        self._local = InProcessBuckets()
        self._down_since: float | None = None
        self._next_try = 0.0
        if redis is None:
            log.warning("rate_limit_fallback", error="RedisUnset")

    @classmethod
    def from_url(cls, url: str | None, *, retry_interval: float = RETRY_SECONDS) -> RateLimiter:
        """A limiter on a new short-timeout client for `url` (in-process only without one)."""
        return cls(create_redis(url) if url else None, retry_interval=retry_interval)

    async def take(self, requests: Sequence[BucketRequest]) -> list[RateDecision]:
        """One decision per request, in order; a bucket named twice gives two tokens."""
        if not requests:
            return []
        if self._redis is not None and self._clock() >= self._next_try:
            try:
                async with asyncio.timeout(self._timeout):
                    waits = await self._take_in_redis(self._redis, requests)
            except (RedisError, OSError) as error:
                self._failed(error)
            else:
                self._answered()
                return [RateDecision.of_wait(wait) for wait in waits]
        return self._local.take(requests, round(self._clock() * 1_000_000))

    async def close(self) -> None:
        """Close the Redis client's connections."""
        if self._redis is not None:
            await self._redis.aclose()

    async def _take_in_redis(
        self, client: aioredis.Redis, requests: Sequence[BucketRequest]
    ) -> list[int]:
        keys = [bucket_key(request) for request in requests]
        args = [str(n) for request in requests for n in (request.per_minute, request.burst)]
        try:
            reply = await client.evalsha(_SCRIPT_SHA, len(keys), *keys, *args)
        except NoScriptError:
            reply = await client.eval(TAKE_SCRIPT, len(keys), *keys, *args)
        if not isinstance(reply, list) or len(reply) != len(requests):
            raise RedisError(f"rate-limit script answered {reply!r}")
        return [int(wait) for wait in reply]

    def _failed(self, error: BaseException) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "rate_limit_fallback",
                error=type(error).__name__,
                retry_in_seconds=self._retry_interval,
            )
        self._next_try = now + self._retry_interval

    def _answered(self) -> None:
        if self._down_since is None:
            return
        log.info("rate_limit_redis_back", outage_seconds=round(self._clock() - self._down_since, 3))
        self._down_since = None
        # Redis holds the shared buckets again; the local ones only undercount from here.
        self._local.clear()

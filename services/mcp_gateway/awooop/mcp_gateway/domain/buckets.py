"""Gate 4's token buckets: one per (project, agent, tool), from the policy's `RateLimit`.

A bucket holds at most `burst` tokens, refills at `per_minute` tokens a minute and starts
full; a call takes one token or learns how long until one is there. The arithmetic is in
whole numbers so that this module (the gateway's in-process fallback) and the Redis
script of `adapters/rate_limits.py` agree to the microsecond: a token is 60 000 000
credits, so a refill of `per_minute` tokens a minute is exactly `per_minute` credits a
microsecond, and nothing rounds but the wait, which rounds up to the millisecond.

A missing bucket is a full one, so a bucket may be forgotten once it has had the time
to fill up again (`full_refill_ms`); Redis does it with a TTL, this module by pruning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CREDITS_PER_TOKEN = 60_000_000
"""Microseconds in a minute: `per_minute` tokens a minute is `per_minute` credits a µs."""

_MICROS_PER_MILLI = 1_000
_PRUNE_FLOOR = 1_024


@dataclass(frozen=True, slots=True)
class BucketRequest:
    """One call asking its (project, agent, tool) bucket for a token, with the policy's
    `RateLimit` of that tool (both at least 1)."""

    project_id: str
    agent_id: str
    tool: str
    per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1:
            raise ValueError(f"per_minute and burst must be at least 1: {self}")


@dataclass(frozen=True, slots=True)
class RateDecision:
    """A token taken, or the seconds (rounded up to the ms, > 0) until one is there."""

    allowed: bool
    retry_after: float

    @classmethod
    def of_wait(cls, wait_ms: int) -> RateDecision:
        """The decision for a wait in milliseconds, 0 meaning a token was taken."""
        return cls(allowed=wait_ms == 0, retry_after=wait_ms / 1000)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's credits as of `at` (microseconds on the clock that refills it)."""

    credits: int
    at: int


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def take_token(bucket: Bucket | None, now: int, per_minute: int, burst: int) -> tuple[Bucket, int]:
    """The bucket after one take at `now` (µs), and the wait in ms: 0 when a token was
    taken, else at least 1. A clock that steps back refills nothing and is not followed."""
    capacity = burst * CREDITS_PER_TOKEN
    if bucket is None:
        credits, at = capacity, now
    else:
        elapsed = max(0, now - bucket.at)
        credits, at = min(capacity, bucket.credits + elapsed * per_minute), max(bucket.at, now)
    if credits >= CREDITS_PER_TOKEN:
        return Bucket(credits - CREDITS_PER_TOKEN, at), 0
    missing = CREDITS_PER_TOKEN - credits
    return Bucket(credits, at), _ceil_div(missing, per_minute * _MICROS_PER_MILLI)


def full_refill_ms(per_minute: int, burst: int) -> int:
    """Milliseconds an empty bucket takes to fill: past them, forgetting it changes nothing."""
    return _ceil_div(burst * CREDITS_PER_TOKEN, per_minute * _MICROS_PER_MILLI)


BucketKey = tuple[str, str, str]
"""(project, agent, tool)."""


class InProcessBuckets:
    """Buckets in a dict, for one process: what gate 4 answers from while Redis is away.

    Requests are taken in order, so the same bucket twice in a batch takes two tokens.
    Buckets idle long enough to be full again are pruned once the dict has doubled.
    """

    def __init__(self) -> None:
        self._buckets: dict[BucketKey, tuple[Bucket, int]] = {}
        self._prune_above = _PRUNE_FLOOR

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, requests: Sequence[BucketRequest], now: int) -> list[RateDecision]:
        """One decision per request, in order, at `now` (µs of a monotonic clock)."""
        decisions = []
        for request in requests:
            key = (request.project_id, request.agent_id, request.tool)
            held = self._buckets.get(key)
            bucket = held[0] if held is not None and held[1] > now else None
            bucket, wait_ms = take_token(bucket, now, request.per_minute, request.burst)
            forget_at = now + full_refill_ms(request.per_minute, request.burst) * _MICROS_PER_MILLI
            self._buckets[key] = (bucket, forget_at)
            decisions.append(RateDecision.of_wait(wait_ms))
        if len(self._buckets) > self._prune_above:
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > now}
            self._prune_above = max(_PRUNE_FLOOR, 2 * len(self._buckets))
        return decisions

    def clear(self) -> None:
        """Forget every bucket."""
        self._buckets.clear()
        self._prune_above = _PRUNE_FLOOR

"""Approval tokens accepted once, ever: the `approval_tokens_used` table, and Redis in front.

The guard is Postgres: a batch inserts the `jti` (`token_id`) of every token it is
about to honour into `approval_tokens_used` in its own transaction, one statement,
`ON CONFLICT DO NOTHING`; a token whose row was there already is a replay. A batch
rolled back leaves no row, so its retry is not refused by its own first attempt.

Redis may refuse a replay before that (ARCHITECTURE §4: a guard that fails closed may
check Redis first): one pipelined round trip per batch sets each token's key to its
call id unless the key exists (`SET NX`, expiring after the token does) and reads it
back. A key holding another call id is a replay. A key holding this call id is this
batch's own earlier attempt (a retried batch rolls back Postgres, not Redis) and goes
on to Postgres, which decides. Redis unset, failing or slow skips the early check:
the call is never failed for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from awooop.infra.logging import get_logger

log = get_logger(__name__)

KEY_PREFIX = "awooop:approval-jti"
KEY_MARGIN_SECONDS = 60
"""A key outlives its token by this much: a token past its expiry is refused anyway."""
REDIS_TIMEOUT = 1.0
RETRY_SECONDS = 5.0
"""After Redis failed, how long the early check is skipped before Redis is tried again."""


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A token about to be honoured for a call."""

    token_id: str
    call_id: str
    approval_id: uuid.UUID
    expires_at: dt.datetime


def token_key(token_id: str) -> str:
    return f"{KEY_PREFIX}:{token_id}"


async def record_uses(conn: asyncpg.Connection, uses: Sequence[TokenUse]) -> set[str]:
    """Insert the batch's token uses in one statement; the token ids inserted now (a
    token id missing from the answer was used before: a replay)."""
    if not uses:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO approval_tokens_used (token_id, call_id, approval_id)
        SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
        ON CONFLICT (token_id) DO NOTHING
        RETURNING token_id
        """,
        [u.token_id for u in uses],
        [u.call_id for u in uses],
        [u.approval_id for u in uses],
    )
    return {row["token_id"] for row in rows}


class EarlyReplayCheck:
    """Redis's early word on token replays; `replayed` never raises for Redis trouble."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = REDIS_TIMEOUT,
        retry_interval: float = RETRY_SECONDS,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._next_try = 0.0

    async def replayed(self, uses: Sequence[TokenUse], now: dt.datetime) -> set[str]:
        """The token ids Redis already holds for another call; empty when Redis is unset,
        failing, or has not been retried since it failed."""
        if not uses or self._redis is None or self._clock() < self._next_try:
            return set()
        try:
            async with asyncio.timeout(self._timeout):
                held = await self._mark(self._redis, uses, now)
        except (RedisError, OSError, TimeoutError) as error:
            self._next_try = self._clock() + self._retry_interval
            log.warning("approval_jti_early_check_skipped", error=type(error).__name__)
            return set()
        return {
            use.token_id
            for use, value in zip(uses, held, strict=True)
            if value is not None and value != use.call_id
        }

    async def _mark(
        self, client: aioredis.Redis, uses: Sequence[TokenUse], now: dt.datetime
    ) -> list[str | None]:
        async with client.pipeline(transaction=False) as pipe:
            for use in uses:
                key = token_key(use.token_id)
                left = (use.expires_at - now).total_seconds()
                ttl = max(1, math.ceil(left)) + KEY_MARGIN_SECONDS
                pipe.set(key, use.call_id, nx=True, ex=ttl)
                pipe.get(key)
            replies = await pipe.execute()
        values = replies[1::2]
        return [v.decode() if isinstance(v, bytes) else v for v in values]

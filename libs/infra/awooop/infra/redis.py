"""Redis: a client per process, and a probe. Redis is never the only guard: with it down
the platform keeps working, slower (ARCHITECTURE §4), so callers treat its errors as
"unknown" and fall back to Postgres or an in-process path."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError


def create_redis(url: str) -> aioredis.Redis:
    """A client with short timeouts: a slow Redis must not stall a batch."""
    return aioredis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


async def redis_answers(client: aioredis.Redis) -> bool:
    """True when Redis answers PING; False (never an exception) when it does not."""
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False

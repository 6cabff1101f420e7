"""An optional Redis cache of the ids a bridge has produced, to answer Slack retries early.

An id is written only after the broker acknowledged its record, so a hit means the
record is on the topic. The cache is never the guard: ingress de-duplicates by
``(project, channel, provider_event_id)`` in Postgres. Any Redis failure reads as a miss
(the retry is produced again) or a skipped write, never as an error of the request.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from awooop.infra.logging import get_logger
from awooop.infra.redis import create_redis

log = get_logger(__name__)

KEY_PREFIX = "awooop:bridge:produced"
TTL_SECONDS = 3600
"""Slack retries a delivery three times within about five minutes; an hour covers it."""


def cache_key(project_id: str, channel_type: str, provider_event_id: str) -> str:
    """The Redis key of one produced record."""
    return f"{KEY_PREFIX}:{project_id}:{channel_type}:{provider_event_id}"


class ProducedIds(Protocol):
    """What the bridge app asks of the cache."""

    async def produced(self, key: str) -> bool:
        """True only when ``key`` is known to have been produced and acknowledged."""
        ...

    async def remember(self, key: str) -> None:
        """Record that ``key`` was acknowledged by the broker; never raises."""
        ...


class RedisProducedIds:
    """:class:`ProducedIds` on Redis, one round trip per call, with the client's short
    timeouts (``awooop.infra.redis``)."""

    def __init__(self, client: aioredis.Redis, ttl_seconds: int = TTL_SECONDS) -> None:
        self._client = client
        self._ttl = ttl_seconds

    @classmethod
    def from_url(cls, url: str) -> RedisProducedIds:
        """A cache on a new client for ``url`` (nothing connects until the first call)."""
        return cls(create_redis(url))

    async def produced(self, key: str) -> bool:
        try:
            return bool(await self._client.exists(key))
        except (RedisError, OSError) as error:
            log.warning("produced_cache_unavailable", error=type(error).__name__)
            return False

    async def remember(self, key: str) -> None:
        try:
            await self._client.set(key, b"1", ex=self._ttl)
        except (RedisError, OSError) as error:
            log.warning("produced_cache_unavailable", error=type(error).__name__)

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

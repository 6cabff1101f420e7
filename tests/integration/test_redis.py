"""Redis as the platform uses it: pipelined per batch, and harmless when absent."""

from __future__ import annotations

import pytest

from awooop.infra.embedded.processes import free_port
from awooop.infra.redis import create_redis, redis_answers
from support.infra import StackUrls, unique

pytestmark = pytest.mark.integration


async def test_a_batch_of_guards_is_one_pipelined_round_trip(stack_urls: StackUrls) -> None:
    client = create_redis(stack_urls.redis)
    try:
        assert await redis_answers(client)
        keys = [unique("jti:") for _ in range(5)]
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, b"1", nx=True, ex=60)
            first = await pipe.execute()
        async with client.pipeline(transaction=False) as pipe:
            for key in keys[:2]:
                pipe.set(key, b"1", nx=True, ex=60)
            second = await pipe.execute()
        assert first == [True] * 5
        assert second == [None, None]  # redis-py answers None, not False, for an existing key
    finally:
        await client.aclose()


async def test_an_absent_redis_is_reported_not_raised() -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert await redis_answers(client) is False
    finally:
        await client.aclose()

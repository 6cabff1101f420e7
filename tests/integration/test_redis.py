"""The platform's Redis code (`awooop.infra.redis`): a client with short timeouts and a probe
that reports, never raises. That is all the platform asks of Redis so far; nothing on a
hot path depends on it (ARCHITECTURE §4: with Redis down the platform keeps working)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from awooop.infra.embedded.processes import free_port
from awooop.infra.redis import create_redis, redis_answers
from support.infra import StackUrls

pytestmark = pytest.mark.integration

# Far above the client's own 0.5 s timeouts: reaching it means the probe hung.
PROBE_BOUND = 10.0


async def _probe(url: str) -> bool:
    client = create_redis(url)
    try:
        async with asyncio.timeout(PROBE_BOUND):
            return await redis_answers(client)
    finally:
        await client.aclose()


async def test_the_stacks_redis_answers(stack_urls: StackUrls) -> None:
    """Breaks caught: a probe that reports False for a live Redis (a wrong URL parse, a
    swallowed reply), which would run the platform on its slower fallbacks for nothing."""
    assert await _probe(stack_urls.redis) is True


async def test_a_closed_port_reads_as_absent_not_as_an_error() -> None:
    """Break caught: the probe letting a refused connection escape as an exception, which
    would turn "Redis is down" into a crash of whoever asked."""
    assert await _probe(f"redis://127.0.0.1:{free_port()}/0") is False


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert held, "the client never connected to the silent server"


async def test_a_redis_that_never_answers_reads_as_absent(silent_server: str) -> None:
    """Break caught: the probe letting a timeout escape. Against a Redis that accepts and
    then hangs (a frozen or partitioned node) the client times out, and the probe must
    report that as absent like any other failure to answer."""
    try:
        answered = await _probe(silent_server)
    except TimeoutError:
        pytest.fail(f"the probe of a silent Redis was still waiting after {PROBE_BOUND}s")
    assert answered is False


async def test_the_client_gives_up_well_before_a_batch_would_stall() -> None:
    """Break caught: the client left on the library's own timeouts (redis-py waits 5 s to
    connect and 5 s per reply), so a hanging Redis would hold a batch for seconds. Read
    from the client itself, not timed, so a loaded machine cannot make it flake."""
    client = create_redis("redis://127.0.0.1:6379/0")  # never connects: only configured
    kwargs = dict(client.connection_pool.connection_kwargs)
    await client.aclose()
    timeouts = {k: kwargs.get(k) for k in ("socket_timeout", "socket_connect_timeout")}
    assert all(t is not None and t <= 1.0 for t in timeouts.values()), (
        f"client timeouts {timeouts} (unset means the library's 5 s)"
    )

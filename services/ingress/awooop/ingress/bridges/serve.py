"""A bridge process: the inbound topic checked, the producer and the cache up, the app
served by the embedded uvicorn server until SIGTERM or SIGINT.

On a stop signal the server stops accepting, lets requests in flight finish (each waits
for its acknowledgement or its deadline), and only then does the producer stop.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

from awooop.contracts.registries.topics import Topics
from awooop.infra.http_server import embedded_server
from awooop.infra.kafka.admin import ensure_topics
from awooop.infra.logging import get_logger
from awooop.infra.settings import Settings
from awooop.ingress.bridges.app import create_bridge_app
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.kafka_publisher import kafka_publish
from awooop.ingress.bridges.produced_cache import RedisProducedIds

log = get_logger(__name__)


class BridgeNotListening(RuntimeError):
    """The HTTP server could not listen on the address it was given."""


async def serve_bridge(
    config: BridgeConfig,
    settings: Settings,
    *,
    host: str,
    port: int,
    use_cache: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve ``config``'s bridge on ``host:port`` until a stop signal.

    The inbound topic is created when missing and checked (``TopicPartitionMismatch``,
    ``TopicConfigMismatch``); the producer reaches ``settings.kafka`` (a ``KafkaError``
    when it cannot); the produced cache uses ``settings.redis_url`` when ``use_cache`` and
    one is set. :class:`BridgeNotListening` when the port cannot be bound.
    """
    kafka = settings.kafka
    await ensure_topics(kafka, [Topics.CHANNEL_INBOUND])
    cache = (
        RedisProducedIds.from_url(settings.redis_url) if use_cache and settings.redis_url else None
    )
    try:
        async with kafka_publish(kafka) as publish:
            app = create_bridge_app(config, publish, produced=cache)
            await _serve(app, host, port, say)
    finally:
        if cache is not None:
            await cache.close()


async def _serve(app: object, host: str, port: int, say: Callable[[str], None]) -> None:
    listening = _listening_socket(host, port)
    server = embedded_server(app, host, port)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    try:
        bound = listening.getsockname()
        say(f"listening on http://{host}:{bound[1]}; Ctrl-C stops")
        log.info("bridge_listening", host=host, port=bound[1])
        await server.serve(sockets=[listening])
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        listening.close()


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket. Bound here, not by uvicorn: uvicorn answers a bind
    failure with ``sys.exit``, which escapes the event loop instead of raising."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listening = socket.socket(family, kind, proto)
        try:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind(address)
            listening.listen(2048)
        except OSError:
            listening.close()
            raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise BridgeNotListening(
            f"the bridge could not listen on {host}:{port}: {reason}"
        ) from None
    return listening

"""A private embedded stack for fault tests that stop or restart its pieces."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from awooop.infra.embedded import EmbeddedStack
from awooop.infra.embedded import broker as broker_piece
from awooop.infra.embedded import postgres as postgres_piece
from support.infra import StackUrls


class OwnStack:
    """Never the stack named by environment URLs: these pieces get killed."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        # Only the stack's own options (`AWOOOP_EMBEDDED_*`), never the caller's URLs.
        self.stack = EmbeddedStack(home, env=dict(env or {}), say=lambda _line: None)

    @property
    def urls(self) -> StackUrls:
        urls = self.stack.urls()
        return StackUrls(
            urls["AWOOOP_KAFKA_BOOTSTRAP"], urls["AWOOOP_DATABASE_URL"], urls["AWOOOP_REDIS_URL"]
        )

    def stop_postgres(self) -> None:
        postgres_piece.stop_postgres(self.stack.recorded()["postgres"], mode="immediate")

    def start_postgres(self) -> None:
        info = self.stack.recorded()["postgres"]
        postgres_piece.start_postgres(Path(info.data_dir), info.port)

    def stop_redis(self) -> None:
        """Kill the embedded Redis (SIGKILL): its cached state is gone with it."""
        info = self.stack.recorded()["redis"]
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)

    def restart_broker(self) -> None:
        """A new, empty broker on the same port: every topic and offset is gone."""
        info = self.stack.recorded()["broker"]
        broker_piece.stop_broker(info)
        pieces = self.stack.recorded()
        pieces["broker"] = broker_piece.start_broker(self.stack.logs, info.port)
        self.stack._record(pieces)


@contextmanager
def own_stack(home: Path) -> Iterator[OwnStack]:
    stack = OwnStack(home)
    try:
        stack.stack.up()
        yield stack
    finally:
        stack.stack.purge()

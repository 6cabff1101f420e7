"""Answers for finished tool calls, recorded in groups: whatever finished since the last
commit goes into the next transaction, which is retried until the database takes it.
The same transaction claims as many due calls as the executor has room for, and hands
them to `start` once it committed: under load the executor commits once per group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from awooop.mcp_gateway.adapters import call_transactions
from awooop.mcp_gateway.adapters.call_transactions import Claimed, FinishedCall, Room
from awooop.mcp_gateway.adapters.executor_connection import ExecutorConnection

BackOff = Callable[[str, Exception, float], Awaitable[float]]
FIRST_DELAY = 0.1
"""Seconds before the first retry of a failed record."""


def _none() -> int:
    return 0


class OutcomeRecorder:
    """Collects finished calls (`add`) and records them from `run()`; `flush()` at the end."""

    def __init__(
        self,
        db: ExecutorConnection,
        room: Room = lambda: 0,
        start: Callable[[Claimed], None] = lambda _claimed: None,
    ) -> None:
        self._db = db
        self._room = room
        self._start = start
        self._finished: list[FinishedCall] = []
        self._has_finished = asyncio.Event()
        self.answered = 0

    def add(self, finished: FinishedCall) -> None:
        self._finished.append(finished)
        self._has_finished.set()

    async def run(self, back_off: BackOff, recorded: Callable[[], None]) -> None:
        """Record groups forever; `recorded` runs after each commit (wake the relay)."""
        delay = FIRST_DELAY
        claiming = True
        while True:
            await self._has_finished.wait()
            group = list(self._finished)
            # After a failure the answers are recorded alone: claiming must never keep
            # them from their runs.
            room = self._room if claiming else _none
            try:
                answered, claimed = await call_transactions.record(self._db, group, room)
            except Exception as error:
                claiming = False
                delay = await back_off("record", error, delay)
                continue
            claiming = True
            self.answered += answered
            # Only what was recorded leaves the list: calls finishing meanwhile stay.
            del self._finished[: len(group)]
            if not self._finished:
                self._has_finished.clear()
            delay = FIRST_DELAY
            recorded()
            self._start(claimed)

    async def flush(self, within: float) -> None:
        """At shutdown: one last attempt for what is left (recording twice is harmless:
        a call already answered is no longer `executing`, so nothing is appended again)."""
        if not self._finished:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(within):
                answered, _ = await call_transactions.record(self._db, self._finished)
                self.answered += answered

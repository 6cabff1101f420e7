"""Retrying through an outage: capped exponential backoff, the service unready meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from awooop.infra.logging import get_logger
from awooop.infra.readiness import Readiness

log = get_logger(__name__)

T = TypeVar("T")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0


def _never(_error: Exception) -> bool:
    return False


class OutageRetry:
    """Runs an attempt until it succeeds; while it fails, the readiness reason `reason`
    holds the service unready."""

    def __init__(
        self,
        reason: str,
        readiness: Readiness | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reason = reason
        self._readiness = readiness
        self._sleep = sleep

    async def until_done(
        self,
        attempt: Callable[[], Awaitable[T]],
        give_up: Callable[[Exception], bool] = _never,
    ) -> T:
        """`attempt`'s result, retried with backoff on every exception but those
        `give_up` names, which are raised at once."""
        failures = 0
        while True:
            try:
                result = await attempt()
            except Exception as error:
                if give_up(error):
                    raise
                failures += 1
                if self._readiness is not None:
                    self._readiness.hold(self.reason, repr(error))
                log.warning(self.reason, error=repr(error), failures=failures)
                await self._sleep(min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF))
                continue
            if failures and self._readiness is not None:
                self._readiness.release(self.reason)
            return result

"""Poison around the outbound handler: dead-lettered once, acknowledged, never a stop.

A record that cannot be decoded, or fails as data while handled, goes to the DLQ with its
original bytes and its cause, then is acknowledged, and the partition flows on. Anything
else escaping the handler is an outage: nothing is acknowledged and the record is handled
again after a capped backoff (its ``deliveries`` row keeps the provider from being called
twice). A DLQ the broker does not take is retried the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from faststream._internal.middlewares import BaseMiddleware

from awooop.contracts.registries.errors import E_DLQ_HANDLER
from awooop.infra.kafka.consumer import is_poison
from awooop.infra.kafka.dlq import DeadLetters
from awooop.infra.kafka.records import PoisonRecord, RawRecord
from awooop.infra.logging import get_logger
from awooop.infra.readiness import Readiness
from awooop.ingress.outbound.outages import OutageRetry

log = get_logger(__name__)

HANDLER_OUTAGE = "outbound-handler-failing"
DEAD_LETTER_OUTAGE = "outbound-dead-letter"


async def acknowledge(message: Any) -> None:
    """Commit past `message`. A failed commit only means a redelivery, which the
    ``deliveries`` row absorbs: logged, never raised."""
    try:
        await message.ack()
    except KafkaError as error:
        log.warning("outbound_ack_failed", error=repr(error))


class PoisonGuard:
    """The middleware factory faststream calls once per record (module docstring)."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        *,
        readiness: Readiness | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dead_letters = dead_letters
        self._handling = OutageRetry(HANDLER_OUTAGE, readiness, sleep)
        self._sending = OutageRetry(DEAD_LETTER_OUTAGE, readiness, sleep)

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware[Any, Any]:
        return _Guarded(self, msg, context=context)

    async def consume(self, call_next: Callable[[Any], Awaitable[Any]], message: Any) -> Any:
        """Run the handler on `message`: its result, or None once poison is dead-lettered."""
        try:
            return await self._handling.until_done(lambda: call_next(message), is_poison)
        except Exception as poison:
            await self._dead_letter(message, poison)
            await acknowledge(message)
            return None

    async def _dead_letter(self, message: Any, error: Exception) -> None:
        record = RawRecord.of(message.raw_message)
        if isinstance(error, PoisonRecord):
            code, reason = error.code, error.reason
        else:
            code, reason = E_DLQ_HANDLER.code, repr(error)
        await self._sending.until_done(
            lambda: self._dead_letters.send(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                code=code,
                error=reason,
                record=record,
            )
        )


class _Guarded(BaseMiddleware[Any, Any]):
    def __init__(self, guard: PoisonGuard, msg: Any, /, *, context: Any) -> None:
        super().__init__(msg, context=context)
        self._guard = guard

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        return await self._guard.consume(call_next, msg)

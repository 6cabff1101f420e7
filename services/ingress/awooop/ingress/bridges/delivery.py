"""Producing one framed record under the acknowledgement deadline.

The order is the contract with the provider: the broker acknowledges, then the bridge
answers 200, then (for Slack event callbacks) the id goes into the produced cache. A
retry found in the cache is answered without producing; anything else is produced again,
and ingress records it as a duplicate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from awooop.infra.logging import get_logger
from awooop.ingress.bridges.framing import Inbound
from awooop.ingress.bridges.kafka_publisher import Publish
from awooop.ingress.bridges.produced_cache import ProducedIds, cache_key

log = get_logger(__name__)

PRODUCED = "produced"
ALREADY_PRODUCED = "already-produced"


class NotAcknowledged(Exception):
    """The broker did not acknowledge the record in time, or refused it: answer 503."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivered:
    """``outcome`` is :data:`PRODUCED` or :data:`ALREADY_PRODUCED`; ``remember`` is the
    cache key to write once the answer is sent (``None``: nothing to write)."""

    outcome: str
    remember: str | None = None


class Delivery:
    """One project's producing path: optional cache lookup, publish, deadline."""

    def __init__(
        self, project_id: str, publish: Publish, produced: ProducedIds | None, ack_deadline: float
    ) -> None:
        self._project_id = project_id
        self._publish = publish
        self._produced = produced
        self._ack_deadline = ack_deadline

    async def deliver(
        self,
        inbound: Inbound,
        key: bytes,
        value: bytes,
        *,
        arrived: float,
        cached: bool,
        retry: bool,
    ) -> Delivered:
        """Produce ``value`` under ``key``, acknowledged within the deadline counted from
        ``arrived`` (event-loop time: the request's arrival).

        ``cached``: the route's ids go into the cache; ``retry``: the provider marked the
        request as a retry, so a cached id answers it. :class:`NotAcknowledged` when the
        deadline passes or the publish fails.
        """
        seen = cache_key(self._project_id, inbound.channel_type, inbound.provider_event_id)
        if retry and self._produced is not None and await self._produced.produced(seen):
            return Delivered(ALREADY_PRODUCED)
        try:
            async with asyncio.timeout_at(arrived + self._ack_deadline):
                await self._publish(key, value)
        except TimeoutError:
            reason = f"the broker did not acknowledge within {self._ack_deadline} s"
            log.warning(
                "bridge_not_acknowledged",
                provider_event_id=inbound.provider_event_id,
                reason=reason,
            )
            raise NotAcknowledged(reason) from None
        except Exception as error:  # any failed publish is unacknowledged: the provider retries
            failure = type(error).__name__
            log.warning(
                "bridge_not_acknowledged",
                provider_event_id=inbound.provider_event_id,
                reason=failure,
            )
            raise NotAcknowledged(f"the broker did not acknowledge ({failure})") from None
        log.debug("bridge_produced", provider_event_id=inbound.provider_event_id, bytes=len(value))
        return Delivered(PRODUCED, seen if cached and self._produced is not None else None)

    async def remember(self, key: str) -> None:
        """Write an acknowledged id to the cache (a no-op without one)."""
        if self._produced is not None:
            await self._produced.remember(key)

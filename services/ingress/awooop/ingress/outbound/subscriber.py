"""The faststream wiring of outbound delivery: one subscriber of ``awooop.channel.outbound.v1``.

Its own consumer group (:data:`OUTBOUND_GROUP`), ``AckPolicy.MANUAL``, one record at a
time: faststream's ack commits every assigned partition's position, which is exact only
because each record is finished (its outcome committed) before the next is read. A
record is acknowledged once :meth:`OutboundWorker.handle` returned.

Records are decoded by the project's envelope codec (older versions upcast); what
cannot be decoded is poison for the :class:`~.poison.PoisonGuard` wrapped around the
handler.

The delivery topic is declared as a publisher for the AsyncAPI document only: reports
reach it through ingress's event store and outbox relay, never through this broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiokafka import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from awooop.contracts.events.payloads.channel import DeliveryReported, OutboundRequested
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import envelope_class
from awooop.contracts.registries.errors import E_DLQ_INVALID
from awooop.contracts.registries.topics import MAX_RECORD_BYTES, Topics
from awooop.infra.kafka.records import PoisonRecord, RawRecord
from awooop.infra.processor import decode_envelope
from awooop.infra.settings import KafkaSettings
from awooop.ingress.outbound.poison import PoisonGuard, acknowledge

if TYPE_CHECKING:
    OutboundEnvelope = Envelope[OutboundRequested]
    DeliveryEnvelope = Envelope[DeliveryReported]
else:
    # The concrete classes pin event_type and schema_version: the document shows them.
    OutboundEnvelope = envelope_class(OutboundRequested)
    DeliveryEnvelope = envelope_class(DeliveryReported)

OUTBOUND_TOPIC = Topics.CHANNEL_OUTBOUND.name
DELIVERY_TOPIC = Topics.CHANNEL_DELIVERY.name
OUTBOUND_GROUP = "awooop.ingress.outbound"
DOCUMENTED_BOOTSTRAP = "localhost:9092"

Handle = Callable[[Envelope[OutboundRequested]], Awaitable[None]]
_CODEC = EnvelopeCodec()


async def decode_outbound(message: Any) -> Envelope[OutboundRequested]:
    """The record's envelope, upcast to the current version; `PoisonRecord` otherwise."""
    envelope: Envelope[Any] = decode_envelope(_CODEC, RawRecord.of(message.raw_message)).body
    if not isinstance(envelope.payload, OutboundRequested):
        reason = f"{envelope.event_type} does not belong on {OUTBOUND_TOPIC}"
        raise PoisonRecord(E_DLQ_INVALID.code, reason)
    return cast("Envelope[OutboundRequested]", envelope)


class _FinishFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions leave this member only once the delivery in flight committed its report
    and was acknowledged: a member taking a partition over must never find a delivery
    still running and take it for one a crash interrupted. (A long 429 wait holds the
    rebalance for as long; at chat rates that is the lesser harm.)"""

    def __init__(self, in_flight: asyncio.Lock) -> None:
        self._in_flight = in_flight

    async def on_partitions_revoked(self, revoked: object) -> None:
        async with self._in_flight:
            return

    async def on_partitions_assigned(self, assigned: object) -> None:
        return


def outbound_broker(
    kafka: KafkaSettings | None,
    handle: Handle,
    guard: PoisonGuard | None = None,
) -> KafkaBroker:
    """The broker with the outbound subscriber (and the documented delivery publisher).

    `kafka` None builds it for the AsyncAPI document only, never to be started.
    """
    # faststream's own lines: its per-record ones at DEBUG (no INFO line per event), and
    # of the rest only errors; its warnings are start-up notes about topic creation,
    # which the runner does itself.
    faststream_log = logging.getLogger("awooop.ingress.outbound.kafka")
    faststream_log.setLevel(logging.ERROR)
    broker = KafkaBroker(
        kafka.bootstrap if kafka is not None else DOCUMENTED_BOOTSTRAP,
        request_timeout_ms=kafka.request_timeout_ms if kafka is not None else 30_000,
        client_id="ingress-outbound",
        consumer_only=True,
        logger=faststream_log,
        log_level=logging.DEBUG,
        middlewares=(guard,) if guard is not None else (),
        graceful_timeout=5.0,
        description="The Kafka cluster named by AWOOOP_KAFKA_BOOTSTRAP.",
    )
    timeouts: dict[str, Any] = {}
    if kafka is not None:
        timeouts = {
            "session_timeout_ms": kafka.session_timeout_ms,
            "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
            "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
        }

    in_flight = asyncio.Lock()

    async def deliver(request: OutboundEnvelope, message: KafkaMessage) -> None:
        """Deliver one outbound message to Telegram or Slack, then report it."""
        async with in_flight:
            await handle(request)
            await acknowledge(message)

    broker.subscriber(
        OUTBOUND_TOPIC,
        group_id=OUTBOUND_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_RECORD_BYTES + 64 * 1024,
        max_poll_interval_ms=600_000,
        decoder=decode_outbound,
        listener=_FinishFirst(in_flight),
        title="deliver",
        description=(
            "Every channel.outbound_requested, delivered to Telegram or Slack at most once "
            f"(consumer group {OUTBOUND_GROUP}); each ends in one channel.delivery_reported."
        ),
        **timeouts,
    )(deliver)
    broker.publisher(
        DELIVERY_TOPIC,
        schema=DeliveryEnvelope,
        title="report",
        description=(
            "One channel.delivery_reported per outbound message (sent, failed or expired), "
            "appended to ingress's event store and published by its outbox relay."
        ),
    )
    return broker

"""How long one record takes from produce to a consumer that was idle, waiting in a fetch.

The services' BatchConsumer waits at most `fetch_max_wait_ms` in a fetch (25 ms
on the embedded stack, aiokafka's 500 ms default elsewhere). A broker that
answers a parked fetch as soon as a record arrives makes that setting free;
one that answers only at its own polling step adds part of it to every hop.
The probe measures both settings on the bench's broker, with pauses of varying
length between samples so that no sample is in step with the broker's polling.
"""

from __future__ import annotations

import asyncio
import time

from kafka_baseline import create_topic, joined_consumer, scratch_topic

from awooop.infra.kafka.producer import create_producer
from awooop.infra.settings import DEV_FETCH_MAX_WAIT_MS, KafkaSettings

SERVICES_FETCH_WAIT_MS = DEV_FETCH_MAX_WAIT_MS
"""What the services' BatchConsumer uses on the embedded stack."""
AIOKAFKA_DEFAULT_WAIT_MS = 500
PROBED_WAITS_MS = (AIOKAFKA_DEFAULT_WAIT_MS, SERVICES_FETCH_WAIT_MS)


async def fetch_wakeup(kafka: KafkaSettings, fetch_wait_ms: int, samples: int = 12) -> list[float]:
    """Seconds from each produce call to the record's arrival at an idle consumer."""
    topic = scratch_topic(f"wakeup-{fetch_wait_ms}")
    await create_topic(kafka, topic)
    consumer = await joined_consumer(kafka, topic, fetch_wait_ms)
    producer = create_producer(kafka, client_id="bench-wakeup")
    await producer.start()
    latencies = []
    try:
        for sample in range(samples):
            await asyncio.sleep(0.05 + (sample * 37 % 11) * 0.017)
            started = time.perf_counter()
            await producer.send(topic, b"x", key=str(sample).encode())
            batches: dict[object, list[object]] = {}
            while not batches:
                batches = await consumer.getmany(timeout_ms=2_000)
            latencies.append(time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


async def probe_waits(kafka: KafkaSettings) -> dict[int, list[float]]:
    return {wait: await fetch_wakeup(kafka, wait) for wait in PROBED_WAITS_MS}

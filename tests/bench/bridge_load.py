"""The webhook bridge under load, against the bench's broker: acknowledged requests per
second and the 99th percentile of the time to the acknowledgement.

Measured last, after every other figure, because what the bridge produces goes through
ingress: the bench bridge's project binds nothing, so each record is refused there as
unbound (DLQ and a rejection event), work that must not overlap the run figures.
"""

from __future__ import annotations

from awooop.infra.settings import KafkaSettings
from awooop.ingress.bridges.app import create_bridge_app
from awooop.ingress.bridges.config import BridgeConfig
from awooop.ingress.bridges.kafka_publisher import kafka_publish
from awooop.ingress.bridges.load import LoadReport, measure

BRIDGE_REQUESTS = 1_000
BRIDGE_CONCURRENCY = 64


async def measure_bridge(kafka: KafkaSettings) -> LoadReport:
    config = BridgeConfig(project_id="bench-bridge", telegram_secrets={"7999": "bench-secret"})
    async with kafka_publish(kafka) as publish:
        app = create_bridge_app(config, publish)
        return await measure(app, BRIDGE_REQUESTS, concurrency=BRIDGE_CONCURRENCY)

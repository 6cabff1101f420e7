"""Prometheus metrics of one service process, served at `/metrics` beside `/readyz`.

Hot paths never touch a metric object: the consumer, the DLQ writer and the
relay keep plain counters, and a collector reads them at scrape time. What
needs I/O — consumer lag per partition (from fetch high watermarks, never
`end_offsets()`), the outbox backlog and the parked rows — is sampled by a
background task every few seconds and served from its last sample.

Label cardinality is bounded by construction: service, consumer group, topic
and partition (from the topic registry), error code (from the code registry),
readiness reason (a handful of names). Never a project, run or event id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from awooop.infra.logging import get_logger

if TYPE_CHECKING:
    from awooop.infra.runner import ServiceRunner

log = get_logger(__name__)

SAMPLE_SECONDS = 2.0

_BACKLOG = """
SELECT (SELECT count(*) FROM outbox) AS backlog,
       (SELECT count(*) FROM outbox_parked) AS parked
"""


@dataclass
class Sample:
    """What the sampler saw last: lag per (topic, partition), outbox backlog, parked rows."""

    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    backlog: int | None = None
    parked: int | None = None


@dataclass
class Counter:
    """A named counter a service's own code increments (e.g. runs claimed)."""

    name: str
    documentation: str
    value: int = 0

    def add(self, amount: int = 1) -> None:
        self.value += amount


class ServiceMetrics(Collector):
    """The collector of one `ServiceRunner`; `registry` is what `/metrics` serves."""

    def __init__(self, runner: ServiceRunner) -> None:
        self._runner = runner
        self.sample = Sample()
        self._counters: dict[str, Counter] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def counter(self, name: str, documentation: str) -> Counter:
        """A service-specific counter, exported as `awooop_<name>_total`."""
        return self._counters.setdefault(name, Counter(name, documentation))

    def collect(self) -> Iterator[Metric]:
        runner = self._runner
        service = runner.spec.service
        yield from self._readiness(service)
        consumer = runner.consumer
        if consumer is not None:
            group = consumer.group
            stats = consumer.stats
            for name, doc, value in (
                ("consumer_batches", "batches committed", stats.batches),
                ("consumer_records", "records handled in committed batches", stats.records),
                ("consumer_outage_retries", "batch attempts that met an outage", stats.outages),
                ("consumer_lingers", "batches that waited for more records (busy)", stats.lingers),
            ):
                yield _counter(name, doc, {"service": service, "group": group}, value)
            yield _counter(
                "consumer_batch_seconds",
                "time spent in committed batches (rate / batches rate = mean duration)",
                {"service": service, "group": group},
                stats.batch_seconds_total,
            )
            yield _gauge(
                "consumer_last_batch_records",
                "records of the last committed batch",
                {"service": service, "group": group},
                stats.last_batch_records,
            )
            yield _gauge(
                "consumer_last_batch_seconds",
                "duration of the last committed batch",
                {"service": service, "group": group},
                stats.last_batch_seconds,
            )
            lag = GaugeMetricFamily(
                "awooop_consumer_lag_records",
                "records behind the high watermark, per assigned partition",
                labels=["service", "group", "topic", "partition"],
            )
            for (topic, partition), behind in sorted(self.sample.lag.items()):
                lag.add_metric([service, group, topic, str(partition)], behind)
            yield lag
            dlq = CounterMetricFamily(
                "awooop_dlq_records",
                "records dead-lettered, by error code",
                labels=["service", "group", "code"],
            )
            for code, count in sorted(runner.dead_letter_counts().items()):
                dlq.add_metric([service, group, code], count)
            yield dlq
        relay = runner.relay
        if relay is not None:
            labels = {"service": service}
            yield _counter(
                "relay_published", "records the relay published", labels, relay.published
            )
            yield _counter("relay_parked", "outbox rows the relay parked", labels, relay.parked)
            if self.sample.backlog is not None:
                yield _gauge(
                    "relay_backlog_rows",
                    "outbox rows not yet published",
                    labels,
                    self.sample.backlog,
                )
            if self.sample.parked is not None:
                yield _gauge(
                    "relay_parked_rows", "rows in outbox_parked", labels, self.sample.parked
                )
        for counter in self._counters.values():
            yield _counter(counter.name, counter.documentation, {"service": service}, counter.value)

    def _readiness(self, service: str) -> Iterator[Metric]:
        runner = self._runner
        reasons = runner.readiness.reasons
        yield _gauge(
            "ready",
            "1 while /readyz answers 200",
            {"service": service},
            int(runner.readiness.ready),
        )
        unready = GaugeMetricFamily(
            "awooop_unready",
            "1 per reason holding the process unready",
            labels=["service", "reason"],
        )
        for reason in sorted(reasons):
            unready.add_metric([service, reason], 1)
        yield unready
        yield _gauge(
            "halted",
            "1 once a broker reset halted the process",
            {"service": service},
            int(runner.halted),
        )
        yield _gauge(
            "outage",
            "1 while the consumer retries through an outage",
            {"service": service},
            int("outage" in reasons),
        )

    async def sample_forever(self, interval: float = SAMPLE_SECONDS) -> None:
        """Refresh lag, backlog and parked rows every `interval` seconds (a supervised task)."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    async def refresh(self) -> None:
        """One sample; a failure keeps the previous figures (an outage is reported elsewhere)."""
        runner = self._runner
        consumer = runner.consumer
        if consumer is not None and consumer.consumer is not None:
            with contextlib.suppress(Exception):
                lag = await consumer.lag()
                self.sample.lag = {(tp.topic, tp.partition): n for tp, n in lag.items()}
        if runner.relay is not None and runner.pool is not None:
            try:
                row = await runner.pool.fetchrow(_BACKLOG, timeout=2.0)
            except Exception as error:
                log.debug("metrics_sample_failed", error=repr(error))
            else:
                assert row is not None
                self.sample.backlog, self.sample.parked = row["backlog"], row["parked"]


def _counter(name: str, doc: str, labels: dict[str, str], value: float) -> Metric:
    family = CounterMetricFamily(f"awooop_{name}", doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _gauge(name: str, doc: str, labels: dict[str, str], value: float) -> Metric:
    family = GaugeMetricFamily(f"awooop_{name}", doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family

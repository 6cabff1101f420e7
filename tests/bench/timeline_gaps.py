"""Where a run's time goes: the gaps between its produce, the `occurred_at` of each of its
timeline events, and the poll that saw it completed.

Every `occurred_at` is stamped by the service that decided the event (ingress,
the runtime, the gateway) when it decided it, so the gap before an event
holds the previous event's relay, the broker, the deciding service's fetch
and its batch, or a local step. All clocks are this host's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence

import asyncpg
from skeleton_load import RunTiming

from awooop.contracts.registries.topics import Topics
from awooop.infra.kafka.log_reader import LogReader, partitions_of
from awooop.infra.settings import KafkaSettings

SEEN = "seen `completed` in the read model"

EVENTS = """
SELECT r.trigger_text, t.event_type, t.occurred_at
FROM projector.timeline t JOIN projector.runs r USING (project_id, run_id)
WHERE t.project_id = $1
ORDER BY r.trigger_text, t.occurred_at, t.event_id
"""


async def timeline_gaps(
    database_url: str, project: str, runs: Sequence[RunTiming]
) -> dict[str, list[float]]:
    """Seconds from the previous step to each event type (in run order), then to `SEEN`."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(EVENTS, project)
    finally:
        await conn.close()
    events: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in rows:
        events[row["trigger_text"]].append((row["event_type"], row["occurred_at"].timestamp()))
    gaps: dict[str, list[float]] = {}
    for run in runs:
        previous = run.produced_wall
        for event_type, at in events.get(run.marker, []):
            gaps.setdefault(event_type, []).append(at - previous)
            previous = at
        seen_wall = run.produced_wall + run.produce_to_timeline
        gaps.setdefault(SEEN, []).append(seen_wall - previous)
    return gaps


RELAYED_TOPICS = (Topics.INGRESS_EVENTS.name, Topics.RUN_EVENTS.name, Topics.GATEWAY_EVENTS.name)
"""The topics a skeleton run's events reach the broker on, each by its service's relay."""


async def relay_lags(
    kafka: KafkaSettings, project: str, spans: Sequence[tuple[float, float]]
) -> list[dict[str, list[float]]]:
    """Per span (wall seconds, from-to), per event type: seconds from the event's
    `occurred_at` (its service decided it) to the relay's send (the record's timestamp,
    which aiokafka stamps in whole milliseconds as the relay adds it to its batch, so a
    lag reads up to 1 ms low), for `project`'s events
    decided within the span. That is the part of each hop before the broker: the rest
    of the deciding batch, its commit, the relay's wake and its read."""
    lags: list[dict[str, list[float]]] = [defaultdict(list) for _ in spans]
    async with LogReader(kafka, partitions_of(RELAYED_TOPICS), client_id="awooop-bench") as reader:
        records = await reader.read_all(within=60.0)
    for record in records:
        body = json.loads(record.value)
        if body.get("project_id") != project:
            continue
        decided = dt.datetime.fromisoformat(body["occurred_at"]).timestamp()
        for (start, end), found in zip(spans, lags, strict=True):
            if start <= decided <= end:
                found[body["event_type"]].append(record.timestamp / 1000 - decided)
    return [dict(found) for found in lags]


def span_of(runs: Sequence[RunTiming]) -> tuple[float, float]:
    """From the first produce of `runs` to the last time one was seen completed (an
    empty span for no runs)."""
    if not runs:
        return (0.0, -1.0)
    return (
        min(run.produced_wall for run in runs),
        max(run.produced_wall + run.produce_to_timeline for run in runs),
    )
